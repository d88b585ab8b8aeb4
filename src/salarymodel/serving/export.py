"""``python -m salarymodel.serving.export``: export the registry's champion for a reload.

Prints ``{"tag": ..., "model_version": ...}`` on success; on failure one line
``error: ...`` on stderr and exit status 2. Run by a worker in a child process
(see ``loading.export_in_child_process``) so that MLflow never loads in a worker.
"""

from __future__ import annotations

import json
import sys

from salarymodel.config.settings import load_settings
from salarymodel.serving.loading import ModelSourceError, export_registry_champion


def main() -> int:
    """Export and print the tag, or say why not."""
    try:
        tag, version = export_registry_champion(load_settings())
    except (ModelSourceError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"tag": tag, "model_version": version}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
