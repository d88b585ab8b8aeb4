"""`salarymodel train` and `salarymodel evaluate`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from salarymodel.cli.application import app, console, fail, stdout, terminate_as_exit
from salarymodel.cli.tables import (
    backtest_table,
    bls_check_table,
    evaluation_table,
    print_groups,
    print_verdicts,
    ranges_table,
)
from salarymodel.cli.terminal import json_text, steps
from salarymodel.config.settings import Settings, load_settings, load_sources
from salarymodel.vocabulary import ALL, FUSED_MODEL

if TYPE_CHECKING:
    from salarymodel.training.job import TrainResult


@app.command(short_help="Train on the shipped data, register, and gate.")
def train(
    sample: int | None = typer.Option(
        None,
        min=1,
        help="Use a random sample of this many raw rows per source (quick runs, tests).",
    ),
    data: list[str] = typer.Option([], help="Override a source's file: NAME=PATH (repeatable)."),
    baselines: bool = typer.Option(True, help="Also cross-validate the baselines."),
    if_no_champion: bool = typer.Option(
        False, "--if-no-champion", help="Do nothing when a champion already exists."
    ),
    dask: str | None = typer.Option(
        None,
        "--dask",
        metavar="ADDRESS",
        help="Fit on this Dask scheduler (tcp://host:port) with lightgbm.dask; "
        "default: training.backend in the config.",
    ),
    new_store: bool = typer.Option(
        False,
        "--new-store",
        help="Create the tracking store even though models/ shows earlier versions "
        "(a new registry, starting at v1).",
    ),
) -> None:
    """Train on the configured sources, log to MLflow, register, promote through the gate."""
    from salarymodel.data.reading import SourceFormatError
    from salarymodel.registry.store import RegistryError
    from salarymodel.training.dask_cluster import ClusterError
    from salarymodel.training.job import train as run_training

    settings, sources = load_settings(), load_sources()
    if if_no_champion and _champion_exists(settings):
        return
    paths = _source_paths(data)
    models = None if baselines else (FUSED_MODEL,)
    with steps(console, "training") as say, terminate_as_exit():
        try:
            kwargs = {"models": models} if models else {}
            result = run_training(
                settings,
                sources,
                paths=paths,
                sample=sample,
                progress=say,
                dask_address=dask,
                new_store=new_store,
                **kwargs,
            )
        except (SourceFormatError, RegistryError, ClusterError) as error:
            raise fail(str(error)) from error
    _print_training(result)


def _champion_exists(settings: Settings) -> bool:
    """Whether a champion exists (said on the console): ``--if-no-champion`` then skips."""
    from salarymodel.registry.champion import champion_version
    from salarymodel.registry.store import RegistryError, connect, store_exists

    if not store_exists(settings):
        return False  # no store: no champion (train decides whether it may create one)
    try:
        current = champion_version(connect(settings), settings)
    except RegistryError as error:
        raise fail(str(error)) from error
    if current is None:
        return False
    console.print(f"champion v{current.version} exists; not training")
    return True


def _source_paths(data: list[str]) -> dict[str, Path]:
    """``--data NAME=PATH`` options as a source's file; exit 2 on one without ``=PATH``."""
    paths = {}
    for item in data:
        name, _, path = item.partition("=")
        if not path:
            raise fail(f"--data expects NAME=PATH, got {item!r}")
        paths[name] = Path(path)
    return paths


def _print_training(result: TrainResult) -> None:
    """What the run kept and quarantined, its tables and verdicts, and the gate's decision."""
    for counts in result.data.counts:
        console.print(
            f"[bold]{counts.source}[/]: {counts.rows_in:,} rows in = {counts.kept:,} kept + "
            f"{counts.quarantined:,} quarantined {counts.reasons or ''}; "
            f"{counts.after_repeats:,} after repeats"
        )
    for finding in result.data.findings:
        console.print(f"  {finding.source}: {finding.rule}: {finding.count:,} -> {finding.action}")
    stdout.print(evaluation_table(result.evaluation.table.to_dict("records"), "Grouped 5-fold CV"))
    if result.evaluation.backtest is not None:
        stdout.print(
            backtest_table(
                result.evaluation.backtest.table.to_dict("records"),
                "Out-of-time backtest (pooled over folds)",
                folds=False,
            )
        )
    stdout.print(
        ranges_table(result.ranges.to_dict("records"), "Calibrated 80% ranges vs constant bands")
    )
    print_verdicts(result.evaluation.verdicts or [])
    status = "promoted to champion" if result.promoted else "kept the current champion"
    console.print(
        f"registered version {result.version} (run {result.run_id}); {status}: "
        f"{result.decision.reason}",
        soft_wrap=True,  # the verdict stays one line in a log
    )
    console.print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))


@app.command(short_help="The champion's evaluation next to the baselines.")
def evaluate(
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Show the champion's cross-validated evaluation next to the baselines."""
    from salarymodel.registry.store import RegistryError
    from salarymodel.registry.views import champion_evaluation

    settings = load_settings()
    try:
        current, evaluation = champion_evaluation(settings)
        check = bls_reality_check(settings)  # reads the champion's bundle
    except RegistryError as error:
        raise fail(str(error)) from error
    payload = {"model_version": str(current.version), "run_id": current.run_id, **evaluation}
    payload["bls_reality_check"] = check
    if as_json:
        sys.stdout.write(json_text(payload))
        return
    stdout.print(evaluation_table(evaluation["table"], f"Champion v{current.version}: CV"))
    if evaluation.get("backtest"):
        backtest = evaluation["backtest"]
        stdout.print(backtest_table(backtest["table"], "Out-of-time backtest: per fold, pooled"))
    if evaluation.get("ranges"):
        stdout.print(ranges_table(evaluation["ranges"], "Calibrated ranges vs constant bands"))
    print_groups(evaluation.get("groups") or {})
    print_verdicts(evaluation.get("verdicts") or [])
    best = [r for r in evaluation["table"] if r["source"] == ALL]
    console.print(f"{len(best)} models compared on the same folds")
    if check:
        stdout.print(bls_check_table(check))


def bls_reality_check(settings: Settings) -> list[dict]:
    """The champion's median estimate vs BLS OEWS per role family and area (bls_reference)."""
    from salarymodel.evaluation.reality_check import champion_reality_check
    from salarymodel.registry.bundles import load_champion

    model, _ = load_champion(settings)
    return champion_reality_check(model, settings).to_dict("records")
