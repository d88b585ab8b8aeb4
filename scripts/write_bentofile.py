"""Write the Python packages of bentofile.yaml from pyproject.toml's dependencies.

`bentoml build` reads bentofile.yaml, which holds its own package list (BentoML
adds [project].dependencies only when it builds from pyproject.toml). That list
is written here from the one kept by hand, pyproject.toml's [project].dependencies:

    python scripts/write_bentofile.py          # rewrite the list
    python scripts/write_bentofile.py --check  # exit 1 when it differs

(tests/code/test_bentofile.py runs the check.) The rest of bentofile.yaml is
written by hand; the list sits between the two marker comments.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "  # BEGIN packages: written by scripts/write_bentofile.py from pyproject.toml\n"
END = "  # END packages\n"


def dependencies(pyproject: Path) -> list[str]:
    """pyproject's [project].dependencies, in their order."""
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def with_packages(bentofile: str, packages: list[str]) -> str:
    """bentofile's text with the list between the markers replaced by ``packages``."""
    if bentofile.count(BEGIN) != 1 or bentofile.count(END) != 1:
        raise ValueError("bentofile.yaml must hold the BEGIN/END packages markers once each")
    head, rest = bentofile.split(BEGIN)
    _, tail = rest.split(END)
    # JSON strings are YAML strings: specifiers such as ">=1.4,<1.5" stay one item.
    lines = "".join(f'    - "{package}"\n' for package in packages)
    return head + BEGIN + lines + END + tail


def main(arguments: list[str]) -> int:
    """Rewrite bentofile.yaml (or with ``--check``, exit 1 when it is stale)."""
    bentofile = ROOT / "bentofile.yaml"
    text = bentofile.read_text()
    wanted = with_packages(text, dependencies(ROOT / "pyproject.toml"))
    if "--check" in arguments:
        if wanted != text:
            print("bentofile.yaml's packages differ from pyproject.toml's dependencies: "
                  "run python scripts/write_bentofile.py", file=sys.stderr)  # fmt: skip
            return 1
        return 0
    bentofile.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
