"""A Dask cluster to train on: its scheduler, and the records on its workers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from salarymodel.config.settings import Settings
from salarymodel.config.sources import CANONICAL_FIELDS

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client, Future


class ClusterError(RuntimeError):
    """A Dask cluster that cannot be reached or cannot run salarymodel."""


def connect(address: str, timeout: float) -> Client:
    """A client of the scheduler at ``address`` whose workers run this salarymodel.

    Raises ``ClusterError`` naming the address when the scheduler does not
    answer within ``timeout`` seconds, has no worker, or a worker runs
    another version of the package.
    """
    from distributed import Client

    try:
        client = Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s: {error}"
        ) from error
    try:
        client.wait_for_workers(1, timeout=timeout)
        check_workers(client, address)
    except TimeoutError as error:
        client.close()
        raise ClusterError(
            f"the Dask scheduler at {address} has no worker (waited {timeout:g} s)"
        ) from error
    except BaseException:
        client.close()
        raise
    return client


def check_workers(client: Client, address: str) -> None:
    """Every worker must import this version of salarymodel (it runs our code)."""
    import salarymodel

    try:
        versions = client.run(_package_version)
    except Exception as error:
        raise ClusterError(
            f"the workers of {address} cannot run salarymodel: {type(error).__name__}: {error}"
        ) from error
    wrong = {w: v for w, v in versions.items() if v != salarymodel.__version__}
    if wrong:
        raise ClusterError(
            f"workers of {address} run another salarymodel ({wrong}); "
            f"this client runs {salarymodel.__version__}"
        )


def _package_version() -> str:
    import salarymodel

    return salarymodel.__version__


# ----- the records, partitioned on the workers ---------------------------------------
@dataclass
class ClusterRecords:
    """Training records on the client and, in shuffled partitions, on the workers."""

    client: Client
    records: pd.DataFrame  # positional index, the order of every mask
    positions: list[np.ndarray]  # each partition's record positions, ascending
    parts: list[Future]

    def selected(self, mask: np.ndarray) -> Iterator[tuple[Future, np.ndarray, np.ndarray | None]]:
        """Per partition holding some of ``mask``: (partition, record positions, rows in it).

        The rows are positions within the partition, None when it is all of them.
        """
        for part, positions in zip(self.parts, self.positions, strict=True):
            picked = mask[positions]
            if picked.all():
                yield part, positions, None
            elif picked.any():
                rows = np.flatnonzero(picked)
                yield part, positions[rows], rows


def scatter_records(client: Client, records: pd.DataFrame, settings: Settings) -> ClusterRecords:
    """Send shuffled partitions of the records' canonical columns to the workers, evenly."""
    records = records.reset_index(drop=True)
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    n_parts = max(1, min(len(records), len(workers) * settings.training.dask_partitions_per_worker))
    order = np.random.RandomState(settings.evaluation.seed).permutation(len(records))
    positions = [np.sort(chunk) for chunk in np.array_split(order, n_parts)]
    columns = [c for c in CANONICAL_FIELDS if c in records.columns]
    parts = [
        client.scatter(records.iloc[chunk][columns], workers=[workers[i % len(workers)]])
        for i, chunk in enumerate(positions)
    ]
    return ClusterRecords(client, records, positions, parts)


def cluster_address(settings: Settings, address: str | None) -> str | None:
    """The scheduler to train on: the command line's, else the config's when its
    backend is dask; None trains in this process."""
    if address:
        return address
    if settings.training.backend == "dask":
        return settings.training.dask_address
    return None
