"""`salarymodel versions`, `promote` and `rollback`: the registry's versions and its champion."""

from __future__ import annotations

import sys

import typer

from salarymodel.cli.application import app, console, fail, stdout
from salarymodel.cli.serving import reload_service
from salarymodel.cli.terminal import fitted_table, json_text
from salarymodel.config.settings import load_settings
from salarymodel.vocabulary import ALL


@app.command(short_help="Registered versions, their metrics, the champion.")
def versions(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """Registered versions with their metrics and data; which one is champion."""
    from salarymodel.registry.store import RegistryError, connect
    from salarymodel.registry.views import version_rows

    settings = load_settings()
    try:
        rows = version_rows(connect(settings), settings)
    except RegistryError as error:
        raise fail(str(error)) from error
    if as_json:
        sys.stdout.write(json_text(rows))
        return
    if not rows:
        console.print("no registered versions; run `salarymodel train`")
        return
    sources = sorted({s for r in rows for s in r["cv_mae_usd"] if s != ALL})
    headers = ("version", "created (UTC)", "origin", "MAE all", *sources,
               "held-out new: MAE vs parent", "data")  # fmt: skip
    cells = []
    for row in rows:
        mae, held = row["cv_mae_usd"], row["holdout_mae_usd"]
        mark = " *" if row["champion"] else " (*)" if row["times_champion"] else ""
        origin = row["kind"] + (f" of v{row['parent_version']}" if row["parent_version"] else "")
        cells.append(
            (row["version"] + mark, row["created"][:16].replace("T", " "), origin,
             f"{mae[ALL]:,.0f}" if ALL in mae else "",
             *[f"{mae[s]:,.0f}" if s in mae else "" for s in sources],
             f"{held['challenger']:,.0f} vs {held['champion']:,.0f}" if len(held) == 2 else "",
             row["data_fingerprint"][:8])
        )  # fmt: skip
    title = (
        f"Model '{settings.tracking.registered_model}': * champion, (*) was champion; CV MAE in USD"
    )
    left = ("version", "created (UTC)", "origin", "data")
    styles = ["bold" if row["champion"] else None for row in rows]
    table = fitted_table(title, headers, cells, stdout.width, left, styles)
    stdout.print(table)


@app.command(short_help="Make a registered version the champion.")
def promote(
    version: str = typer.Argument(..., help="The registered version to make champion."),
    reload: bool = typer.Option(False, "--reload", help="Ask the local service to load it."),
) -> None:
    """Move the champion alias to VERSION (an explicit decision: the gate is not asked).

    VERSION already champion: nothing changes (exit 0), its history included.
    """
    from salarymodel.registry.champion import promote as promote_version
    from salarymodel.registry.store import RegistryError, connect

    settings = load_settings()
    try:
        before, target = promote_version(connect(settings), settings, version)
    except RegistryError as error:
        raise fail(str(error)) from error
    if before is not None and str(before.version) == str(target.version):
        console.print(f"v{target.version} is already the champion; nothing changed")
    else:
        was = f"v{before.version}" if before else "none"
        console.print(f"champion is now v{target.version} (was {was})")
    if reload:
        reload_service(settings)


@app.command(short_help="Back to the previous champion.")
def rollback(
    reload: bool = typer.Option(False, "--reload", help="Ask the local service to load it."),
) -> None:
    """Move the champion alias back to the previous champion."""
    from salarymodel.registry.champion import rollback as rollback_champion
    from salarymodel.registry.store import RegistryError, connect

    settings = load_settings()
    try:
        before, after = rollback_champion(connect(settings), settings)
    except RegistryError as error:
        raise fail(str(error)) from error
    console.print(f"rolled back: champion is now v{after.version} (was v{before.version})")
    if reload:
        reload_service(settings)
