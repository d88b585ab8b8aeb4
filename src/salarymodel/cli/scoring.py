"""`salarymodel predict`, `explain` and `report`: the champion put to use."""

from __future__ import annotations

from pathlib import Path

import typer

from salarymodel.cli.application import app, console, fail, stdout
from salarymodel.cli.outputs import check_output, writing
from salarymodel.cli.terminal import fitted_table, steps
from salarymodel.config.settings import load_settings, load_sources, resolve_path

# Default output folders, under the project root.
EXPLANATIONS_DIR = "models/explanations"
REPORT_DIR = "models/report"


@app.command(short_help="Score a CSV with the champion, row for row.")
def predict(
    input_path: Path = typer.Option(..., "--input", exists=True, dir_okay=False),
    output_path: Path = typer.Option(..., "--output", dir_okay=False),
    source: str | None = typer.Option(
        None, help="Format of the input (a configured source); detected when omitted."
    ),
) -> None:
    """Score a CSV with the champion: one output row per input row, in order."""
    from salarymodel.core.prediction import read_scoring_file, write_scored
    from salarymodel.data.reading import SourceFormatError
    from salarymodel.data.sources import source_config

    settings, sources = load_settings(), load_sources()
    check_output(output_path, "file")
    try:
        # The file and the format first: either refused before the registry (and
        # MLflow, the slowest import) is touched.
        if source is not None:
            source_config(sources, source)
        raw, lines = read_scoring_file(input_path)
    except SourceFormatError as error:
        raise fail(str(error)) from error
    from salarymodel.registry.cached_champion import load_champion_quickly
    from salarymodel.registry.store_path import RegistryError
    from salarymodel.serving.loading import read_serving_bundle

    try:
        # LightGBM's C library reads the boosters, as in the service: scoring a
        # file needs neither the lightgbm package nor the scikit-learn it imports,
        # and, when the cache holds the champion, not MLflow either.
        model, version = load_champion_quickly(settings, read_serving_bundle)
        with writing(output_path):
            scored = write_scored(raw, lines, output_path, model, settings, sources, source)
    except (SourceFormatError, RegistryError) as error:
        raise fail(str(error)) from error
    errors = int((scored["error"] != "").sum())
    estimated = int(scored["estimate_usd"].notna().sum())
    console.print(
        f"scored {estimated:,} of {len(scored):,} rows with model v{version}"
        f"; {errors:,} rows have an error (see the 'error' column) -> {output_path}"
    )
    if "percentile" in scored:
        column = settings.prediction.salary_column
        console.print(f"{int(scored['percentile'].notna().sum()):,} rows have a percentile "
                      f"(where '{column}' falls among similar jobs)")  # fmt: skip
    china = int((scored["market_reference"] != "").sum())
    if china:
        # The column's text says how few Chinese records the model has.
        console.print(f"Maimai 2023 pay beside {china:,} China rows: column 'market_reference'")


@app.command(short_help="The champion's SHAP plots and premiums table.")
def explain(
    output: Path | None = typer.Option(
        None,
        help="Folder for the SHAP plots and premiums table "
        "[default: models/explanations in the project]",
    ),
) -> None:
    """Regenerate the champion's global SHAP outputs: plots and the premiums table."""
    from salarymodel.core.explanations import Explainer
    from salarymodel.data.dataset import load_training_data
    from salarymodel.data.reading import SourceFormatError
    from salarymodel.registry.bundles import load_champion
    from salarymodel.registry.store import RegistryError
    from salarymodel.report.explanation_plots import write_global_explanations

    settings, sources = load_settings(), load_sources()
    # The project's folder (SALARYMODEL_ROOT), wherever the command runs from.
    output = check_output(output or resolve_path(EXPLANATIONS_DIR), "folder")
    try:
        model, version = load_champion(settings)
        data = load_training_data(settings, sources)
    except (SourceFormatError, RegistryError) as error:
        raise fail(str(error)) from error
    with steps(console, "explaining the champion with SHAP"), writing(output):
        table, paths = write_global_explanations(
            Explainer.from_model(model),
            data.records,
            output,
            settings.explanations.sample_size,
            settings.explanations.min_count,
            seed=settings.evaluation.seed,
        )
    skills = table[table["concept"].str.startswith("skill: ")].nlargest(10, "count")
    cells = [
        (row.concept.removeprefix("skill: "), f"{row.mean_premium_pct:+.1f}%",
         f"{row.dollars_at_median:+,.0f}", f"{row.count:,}")
        for row in skills.itertuples()
    ]  # fmt: skip
    title = f"Champion v{version.version}: top skill premiums (sample counts)"
    headers = ("skill", "premium", "USD at median", "n")
    stdout.print(fitted_table(title, headers, cells, stdout.width, ("skill",)))
    console.print(f"wrote {len(paths)} files to {output}")


@app.command(short_help="Write the market insights report (HTML).")
def report(
    output: Path | None = typer.Option(
        None, help="Folder for report.html and PNGs [default: models/report in the project]"
    ),
) -> None:
    """Write the market insights report (self-contained HTML, images embedded)."""
    from salarymodel.data.dataset import load_training_data
    from salarymodel.data.reading import SourceFormatError
    from salarymodel.registry.store import missing_store_error, store_exists
    from salarymodel.registry.views import champion_accuracy
    from salarymodel.report.build import build_report

    settings, sources = load_settings(), load_sources()
    output = check_output(output or resolve_path(REPORT_DIR), "folder")
    if not store_exists(settings):  # the report reads the champion's accuracy from it
        raise fail(str(missing_store_error(settings)))
    try:
        data = load_training_data(settings, sources)
    except SourceFormatError as error:
        raise fail(str(error)) from error
    premiums, plots = explanation_outputs(output)
    accuracy = champion_accuracy(settings)
    with writing(output):
        path = build_report(
            data.records,
            settings,
            output,
            premiums=premiums,
            premium_plots=plots,
            accuracy=accuracy,
        )
    console.print(f"report written to {path}")


def explanation_outputs(output: Path):
    """Premiums table and plots from `salarymodel explain`, when they have been written."""
    import pandas as pd

    folder = output.parent / "explanations"
    table = folder / "premiums.csv"
    if not table.exists():
        return None, None
    # "NA" is a country code (Namibia), not a missing value: only empty cells are missing.
    return pd.read_csv(table, keep_default_na=False, na_values=[""]), sorted(folder.glob("*.png"))
