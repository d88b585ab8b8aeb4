"""The salarymodel command line (Typer + Rich): the app, its commands, one module per group.

salarymodel train | evaluate            cli/training.py
salarymodel predict | explain | report  cli/scoring.py
salarymodel serve                       cli/serving.py
salarymodel retrain | drift             cli/retraining.py
salarymodel versions | promote | rollback  cli/versions.py
"""

from __future__ import annotations

from salarymodel.cli.application import app, fail
from salarymodel.config.settings import ConfigError

# Each command group registers its commands on `app` when imported; Typer lists
# them in this order in --help.
# isort: off
import salarymodel.cli.training
import salarymodel.cli.scoring
import salarymodel.cli.serving
import salarymodel.cli.retraining
import salarymodel.cli.versions  # noqa: F401  versions, promote, rollback

# isort: on


def main() -> None:
    """The console script: the Typer app, with configuration errors as one clear line.

    Anything else a command did not expect (a file no check foresaw, a full
    disk) is one ``error:`` line and exit 2 too, never a traceback: for
    ``retrain`` exit 1 means "champion kept", which a crash must not claim.
    """
    try:
        app()
    except ConfigError as error:  # one line however long its path: never wrapped at 80
        fail(str(error))
        raise SystemExit(2) from None
    except Exception as error:  # the last line of defence, by design
        text = " ".join(str(error).split())[:500]
        fail(f"unexpected {type(error).__name__}: {text}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
