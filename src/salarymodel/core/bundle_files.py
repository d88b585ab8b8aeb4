"""A model bundle's files: their names, the SHA-256 manifest guarding them, the booster reader.

A bundle is a folder of plain files, never a pickle (``SalaryModel.save``
and ``load`` in ``core.model``). ``write_manifest`` records each file's
SHA-256 when it is saved and ``verify_manifest`` refuses a folder whose files
are missing or changed: LightGBM reads a damaged booster without complaint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Reads a LightGBM text model file into something with ``predict`` (and
# ``num_feature``): ``lightgbm.Booster`` for training and the CLI, the lean
# ``serving.booster.NativeBooster`` in a service worker.
BoosterReader = Callable[[Path], Any]

BOOSTER_FILE = "booster.txt"
FEATURES_FILE = "features.json"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"


class BundleError(RuntimeError):
    """A model bundle that is missing or unreadable."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """Record the SHA-256 of every file of the bundle in ``manifest.json``."""
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST_FILE)
    manifest = {name: _sha256(folder / name) for name in files}
    (folder / MANIFEST_FILE).write_text(json.dumps({"sha256": manifest}, indent=1))


def verify_manifest(folder: Path) -> None:
    """Refuse a bundle whose files are missing or differ from its manifest.

    LightGBM reads a booster with a flipped digit or a cut-off tail without
    complaint and predicts nonsense: only a checksum tells a damaged file.
    """
    try:
        expected = json.loads((folder / MANIFEST_FILE).read_text())["sha256"]
    except (ValueError, KeyError, TypeError) as error:
        raise BundleError(f"model bundle {folder}: unreadable {MANIFEST_FILE}: {error}") from error
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"model bundle {folder} is missing {name}")
        if _sha256(path) != digest:
            raise BundleError(
                f"model bundle {folder}: {name} is corrupt (its SHA-256 differs from the "
                f"one recorded when the model was saved)"
            )


def lightgbm_booster(path: Path) -> Any:
    """A ``lightgbm.Booster`` from a text model file (LightGBM's errors as ``BundleError``)."""
    import lightgbm as lgb

    try:
        return lgb.Booster(model_file=str(path))
    except lgb.basic.LightGBMError as error:
        raise BundleError(f"{path.name}: {error}") from error
