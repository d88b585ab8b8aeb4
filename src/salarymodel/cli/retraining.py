"""`salarymodel retrain` and `salarymodel drift`: a new file, checked, then kept or not."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from salarymodel.cli.application import app, console, fail, stdout, terminate_as_exit
from salarymodel.cli.outputs import check_output, writing
from salarymodel.cli.serving import reload_service
from salarymodel.cli.terminal import fitted_table, json_text, steps
from salarymodel.config.settings import load_settings, load_sources, resolve_path

# Default output folder, under the project root.
DRIFT_DIR = "models/drift"

if TYPE_CHECKING:
    from rich.console import Console


def print_counts(counts) -> None:
    console.print(
        f"[bold]{counts.source}[/]: {counts.rows_in:,} rows in = {counts.kept:,} accepted + "
        f"{counts.quarantined:,} quarantined {counts.reasons or ''}; "
        f"{counts.after_repeats:,} records after repeats"
    )


def print_quarantine(quarantined, path, limit: int = 5) -> None:
    for row in quarantined.head(limit).to_dict("records"):
        console.print(f"  line {int(row['line'])}: {row['reason']}")
    if len(quarantined) > limit:
        console.print(f"  ... {len(quarantined) - limit:,} more")
    if path is not None:
        console.print(f"  quarantined rows with their reasons: {path}")


def print_drift(drift, folder: Path) -> None:
    head = drift.headline()
    top = ", ".join(f"{t['feature']} {t['psi']:.2f} ({t['level']})" for t in head["top_psi"])
    shift = head["salary_median_shift_pct"]
    console.print(
        f"drift vs {head['reference_rows']:,} reference records: top PSI {top or 'n/a'}; "
        f"never seen before: {head['unseen_titles']:,} titles, "
        f"{head['unseen_countries']:,} countries, {head['unseen_skills']:,} skills; "
        + (
            f"median salary {head['salary_median_reference']:,.0f} -> "
            f"{head['salary_median_new']:,.0f} USD ({shift:+.1f}%)"
            if shift is not None
            else "salary shift not measured"
        )
    )
    if "unseen_title_share" in head:
        console.print(
            f"  unseen: {head['unseen_title_share']:.1%} of records with an unknown title, "
            f"{head['unseen_skills_share']:.1%} of those with skills with none known; "
            f"salary PSI {head['salary_psi'] or 0:.3f}"
        )
    console.print(f"  report: {folder / 'drift.html'} (and drift.json)")


def refuse_unusable(new) -> None:
    """Exit 2 for a file none of whose rows passed validation: drift against no
    records would be an empty report blaming the reference data."""
    if len(new.records):
        return
    counts, quarantine = new.prepared.counts, new.prepared.quarantine_file
    print_counts(counts)
    print_quarantine(new.prepared.validation.quarantined, None)
    where = f"; quarantined rows with their reasons: {quarantine}" if quarantine else ""
    raise fail(f"{new.path}: no usable rows: all {counts.rows_in:,} were set aside{where}")


def print_new_data(result) -> None:
    """The new file's rows: accepted, quarantined (a few with their reasons), novel."""
    prepared = result.new.prepared
    print_counts(prepared.counts)
    print_quarantine(prepared.validation.quarantined, prepared.quarantine_file)
    console.print(
        f"{result.novel_records:,} new records; {result.repeats_of_existing:,} repeat "
        "records already in the training data (merged as one)"
    )


def print_gate(result, out: Console) -> None:
    """Every check of the retrain gate, passed or not, with its detail, on ``out``."""
    checks = [
        (check.name, "yes" if check.passed else "[red]no[/]", check.detail)
        for check in result.decision.checks
    ]
    title = f"Retrain gate (champion v{result.parent_version})"
    headers = ("check", "passed", "detail")
    out.print(fitted_table(title, headers, checks, out.width, headers))


def print_outcome(result) -> None:
    """Promoted or kept, on one line (a log keeps it whole), and the steps' seconds."""
    from salarymodel.promotion.decisions import HELD_OUT_CHECK

    if result.promoted:
        # The decision with its interval, on one line as when the champion is kept.
        held_out = [c.detail for c in result.decision.checks if c.name == HELD_OUT_CHECK]
        console.print(
            f"[bold green]promoted[/] version {result.version} (run {result.run_id}), refit on "
            f"all records; accepted rows kept in {result.accepted_file}; "
            f"{HELD_OUT_CHECK}: {'; '.join(held_out)}",
            soft_wrap=True,
        )
    else:
        console.print(
            f"[bold yellow]kept champion v{result.parent_version}[/] (run {result.run_id}): "
            f"{result.decision.reason}",
            soft_wrap=True,  # the verdict stays one line in a log
        )
        if result.quarantined_file is not None:
            console.print(
                f"the whole file was quarantined: {result.quarantined_file} "
                f"(reasons and drift figures in {result.quarantined_file.name}.reason.txt)",
                soft_wrap=True,
            )
    console.print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))


@app.command(short_help="Validate a new file, retrain, then promote or keep.")
def retrain(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="The new CSV."),
    source: str | None = typer.Option(
        None, help="Its format (a configured source); detected from the columns when omitted."
    ),
    sample: int | None = typer.Option(
        None, min=1, help="Use a sample of this many raw rows per shipped source (quick runs)."
    ),
    reload: bool = typer.Option(
        False, "--reload", help="After a promotion, ask the local service to load the champion."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON on stdout."),
) -> None:
    """Retrain with a new file: validate, quarantine, merge, compare, then promote or keep.

    Exit status: 0 promoted, 1 champion kept (the reason is printed), 2 the file
    or the registry could not be used.
    """
    from salarymodel.data.reading import SourceFormatError
    from salarymodel.registry.store import RegistryError
    from salarymodel.retraining.job import retrain as run_retrain

    settings, sources = load_settings(), load_sources()
    with steps(console, "retraining") as say, terminate_as_exit():
        try:
            result = run_retrain(settings, sources, data, source, sample, progress=say)
        except (SourceFormatError, RegistryError) as error:
            raise fail(str(error)) from error
    print_new_data(result)
    print_drift(result.drift, result.folder)
    print_gate(result, console if as_json else stdout)  # with --json, stdout is the JSON alone
    print_outcome(result)
    if as_json:
        sys.stdout.write(json_text(result.summary()))
    if result.promoted and reload:
        reload_service(settings)
    if not result.promoted:
        raise typer.Exit(1)


@app.command(short_help="Drift of a new file against the training data.")
def drift(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="The new CSV."),
    source: str | None = typer.Option(None, help="Its format; detected when omitted."),
    output: Path | None = typer.Option(
        None, help="Folder for drift.html and .json [default: models/drift in the project]"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the drift report as JSON on stdout."),
) -> None:
    """Drift of a new file against the training data, without training anything."""
    from salarymodel.data.dataset import load_training_data
    from salarymodel.data.reading import SourceFormatError
    from salarymodel.evaluation.drift import drift_report
    from salarymodel.evaluation.drift_output import write_drift_report
    from salarymodel.retraining.intake import read_new_file

    settings, sources = load_settings(), load_sources()
    # The project's folder (SALARYMODEL_ROOT), wherever the command runs from, as for
    # explain and report; checked before the work: the quarantine is written there too.
    output = check_output(output or resolve_path(DRIFT_DIR), "folder")
    # The file first: one that cannot be read is refused before MLflow (the registry's
    # import, the slowest of a command's start) is even imported.
    with steps(console, f"reading {data.name}") as say:
        try:
            new = read_new_file(data, settings, sources, source, quarantine_dir=output)
        except SourceFormatError as error:
            raise fail(str(error)) from error
        refuse_unusable(new)
        say("loading the champion")
        from salarymodel.registry.bundles import load_champion
        from salarymodel.registry.store import RegistryError

        try:
            model, _ = load_champion(settings)
            say("loading the training data")
            existing = load_training_data(settings, sources)
        except (SourceFormatError, RegistryError) as error:
            raise fail(str(error)) from error
        say("measuring drift")
        report = drift_report(existing.records, new.records, model.builder)
        with writing(output):
            write_drift_report(report, output)
    print_counts(new.prepared.counts)
    print_quarantine(new.prepared.validation.quarantined, new.prepared.quarantine_file)
    print_drift(report, output)
    if as_json:
        sys.stdout.write(json_text(report.to_dict()))
