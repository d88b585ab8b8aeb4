"""Where a command writes: checked before its work, and a write that fails named.

:func:`check_output` runs before a command's work (scoring, SHAP, drift), so a bad
``--output`` costs no minutes and leaves nothing behind; :func:`writing` turns an
``OSError`` of the write itself (a full disk) into one ``error:`` line naming the path.
A missing folder is not an error: the command creates it when it writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from salarymodel.cli.application import fail


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _can_create_in(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (``None``: it can); the probe is removed."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".salarymodel-probe-"):
            return None
    except OSError as error:
        return error.strerror or str(error)


def check_output(path: Path, kind: Literal["file", "folder"], option: str = "--output") -> Path:
    """``path`` if a command can write a ``kind`` there; else exit 2 naming it and why.

    Nothing is created: an existing file is opened for appending (not truncated),
    otherwise a probe file is made and removed in the nearest existing folder.
    """
    if path.exists():
        if path.is_dir() != (kind == "folder"):
            what = "a folder, not a file" if path.is_dir() else "a file, not a folder"
            raise fail(f"{option} {path}: is {what}")
        if kind == "file":
            try:
                path.open("ab").close()
            except OSError as error:
                raise fail(f"{option} {path}: cannot write it: {error.strerror}") from error
            return path
    folder = _existing_ancestor(path if kind == "folder" else path.parent)
    if not folder.is_dir():
        raise fail(f"{option} {path}: {folder} is a file, not a folder")
    if why := _can_create_in(folder):
        raise fail(f"{option} {path}: cannot write in {folder}: {why}")
    return path


@contextmanager
def writing(path: Path, option: str = "--output") -> Iterator[None]:
    """An ``OSError`` writing under ``path`` (a full disk) as exit 2 naming it.

    One naming another file (a shipped file the command reads) is not a
    failure of the output and goes on to the last line of defence as it is.
    """
    try:
        yield
    except OSError as error:
        named = Path(error.filename).absolute() if isinstance(error.filename, str) else None
        where = path.absolute()
        if named is not None and named != where and where not in named.parents:
            raise
        raise fail(f"{option} {path}: writing failed: {error.strerror or error}") from error
