"""The salarymodel command line (Typer + Rich).

salarymodel train                 train on the shipped data, register, gate
salarymodel evaluate --json       the champion's evaluation and baselines
salarymodel predict --input CSV --output CSV [--source NAME]
salarymodel serve [--port N]      the HTTP service and web page on 127.0.0.1
salarymodel retrain --data NEW.csv [--source NAME]   validate, merge, compare, promote or keep
salarymodel drift --data NEW.csv  drift of a new file against the training data
salarymodel versions              registered versions, their metrics, the champion
salarymodel promote VERSION       make a version the champion
salarymodel rollback              back to the previous champion
salarymodel explain               the champion's SHAP plots and premiums table
salarymodel report                the market insights report (HTML)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console, RenderableType

from salarymodel.cli.terminal import fitted_table, json_text, steps
from salarymodel.config import ConfigError, Settings, load_settings, load_sources
from salarymodel.vocabulary import ALL

# Imports follow use: each command imports what it needs when it runs, so
# `salarymodel --help` loads none of pandas, LightGBM, MLflow, SHAP or BentoML.
# One clean line for --help (the module docstring's list is for readers of the code;
# Typer lists every command with its docstring's first line).
HELP = "Train, evaluate, explain and serve the salary model; manage its versions."
app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP)
console = Console(stderr=True)
stdout = Console()


@app.callback()
def _quiet_libraries() -> None:
    # Before any command. MLflow and alembic log every migration and artifact at INFO; the CLI
    # prints its own summary instead.
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Its SQL store logs a failed query with SQL and traceback before raising;
    # the command reports the error itself, on one line.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module="mlflow")


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM (`kill`, a job's time limit) raises SystemExit(143) while training, so
    the open MLflow run ends FAILED instead of staying RUNNING (SIGKILL still cannot)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail(message: str, code: int = 2) -> typer.Exit:
    from rich.markup import escape  # a message may hold [brackets] (paths, SQL)

    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # one line
    return typer.Exit(code)


def evaluation_table(rows: list[dict], title: str) -> RenderableType:
    """A Rich table of CV metrics: one line per model and source."""
    cells = [
        (row["model"], row["source"], f"{row['n']:,}", f"{row['r2_log']:.3f}",
         f"{row['mae_usd']:,.0f}", f"{row['mdape']:.1f}")
        for row in rows
    ]  # fmt: skip
    headers = ("model", "source", "n", "R² (log)", "MAE (USD)", "MdAPE (%)")
    styles = ["bold" if row["model"] == "fused_lightgbm" else None for row in rows]
    return fitted_table(title, headers, cells, stdout.width, ("model", "source"), styles)


def ranges_table(rows: list[dict], title: str) -> RenderableType:
    """A Rich table of range coverage and width per split, method and source."""
    cells = []
    for row in rows:
        fifths = row.get("coverage_by_pay_fifth")
        cells.append(
            (row["split"], row["method"], row["source"], f"{row['n']:,}",
             f"{row['coverage']:.3f}",
             f"{row['below_low']:.3f}" if "below_low" in row else "",
             f"{row['above_high']:.3f}" if "above_high" in row else "",
             f"{row['mean_width_usd']:,.0f}", f"{row['width_at_target_usd']:,.0f}",
             " ".join(f"{100 * v:.0f}" for v in fifths) if isinstance(fifths, list) else "")
        )  # fmt: skip
    # "in range" (the coverage): a header word as short as its values, so the
    # ten columns fit 80 characters.
    headers = ("split", "method", "source", "n", "in range", "below", "above", "mean width (USD)",
               "width at target (USD)", "in range by pay fifth (%)")  # fmt: skip
    styles = ["bold" if row["method"] == "calibrated" else None for row in rows]
    return fitted_table(title, headers, cells, stdout.width, ("split", "method", "source"), styles)


def backtest_table(rows: list[dict], title: str, folds: bool = True) -> RenderableType:
    """A Rich table of the out-of-time backtest: per fold (when ``folds``) and pooled.

    A fold is named by its source and test period; pooled rows by the source.
    """
    shown = [
        {**row, "source": row["source"] if row["fold"] == ALL else row["fold"]}
        for row in rows
        if folds or row["fold"] == ALL
    ]
    return evaluation_table(shown, title)


@app.command(short_help="Train on the shipped data, register, and gate.")
def train(
    sample: int | None = typer.Option(
        None, help="Use a random sample of this many raw rows per source (quick runs, tests)."
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
    from salarymodel.data.sources import SourceFormatError
    from salarymodel.registry.champion import champion_version
    from salarymodel.registry.store import RegistryError, connect, store_exists
    from salarymodel.training.distributed import ClusterError
    from salarymodel.training.job import train as run_training

    settings, sources = load_settings(), load_sources()
    if if_no_champion and not store_exists(settings):
        if_no_champion = False  # no store: no champion (train decides whether it may create one)
    if if_no_champion:
        try:
            current = champion_version(connect(settings), settings)
        except RegistryError as error:
            raise _fail(str(error)) from error
        if current is not None:
            console.print(f"champion v{current.version} exists; not training")
            return
    paths = {}
    for item in data:
        name, _, path = item.partition("=")
        if not path:
            raise _fail(f"--data expects NAME=PATH, got {item!r}")
        paths[name] = Path(path)
    models = None if baselines else ("fused_lightgbm",)
    with steps(console, "training") as say, _terminate_as_exit():
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
            raise _fail(str(error)) from error
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
    _print_verdicts(result.evaluation.verdicts or [])
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
    except RegistryError as error:
        raise _fail(str(error)) from error
    payload = {"model_version": str(current.version), "run_id": current.run_id, **evaluation}
    check = _bls_reality_check(settings)
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
    _print_groups(evaluation.get("groups") or {})
    _print_verdicts(evaluation.get("verdicts") or [])
    best = [r for r in evaluation["table"] if r["source"] == ALL]
    console.print(f"{len(best)} models compared on the same folds")
    if check:
        stdout.print(bls_check_table(check))


def _bls_reality_check(settings: Settings) -> list[dict]:
    """The champion's median estimate vs BLS OEWS per role family and area (bls_reference)."""
    from salarymodel.evaluation.reality_check import champion_reality_check
    from salarymodel.registry.bundles import load_champion

    model, _ = load_champion(settings)
    return champion_reality_check(model, settings).to_dict("records")


def bls_check_table(rows: list[dict]) -> RenderableType:
    """The reality-check rows as a table that fits the terminal."""
    headers = ["role family", "occupation", "area", "records", "model median", "actual median",
               "BLS median", "model / BLS"]  # fmt: skip
    cells = [
        [
            r["role_family"],
            r["occupation"],
            r["area"],
            f"{r['records']:,}",
            f"${r['model_median_usd']:,}",
            f"${r['actual_median_usd']:,}",
            f"${r['bls_median_usd']:,.0f}",
            f"{r['model_over_bls']:.2f}",
        ]
        for r in rows
    ]
    title = "Reality check: median estimate vs BLS OEWS May 2025 (US records, per area)"
    return fitted_table(title, headers, cells, stdout.width, left=headers[:3])


def _print_verdicts(verdicts: list[dict]) -> None:
    """The fused model against its rivals: word, MAE difference and paired interval."""
    from salarymodel.promotion.verdicts import printed_lines

    for line in printed_lines(verdicts):
        console.print(line, soft_wrap=True)  # one verdict, one line in a log


def _print_groups(groups: dict) -> None:
    """Per-group accuracy and ranges, and the percentile check, of CV and the backtest."""
    from salarymodel.cli.terminal import group_accuracy_table, percentile_check_table

    names = {"cv": "grouped CV (out of fold)", "backtest": "backtest (out of time)"}
    for split, name in names.items():
        if split not in groups:
            continue
        stdout.print(
            group_accuracy_table(groups[split]["groups"], f"Per group, {name}", stdout.width)
        )
        for column, what in (("raw_percentile", "raw"), ("percentile", "calibrated (served)")):
            rows = groups[split]["percentile_check"][column]
            title = f"Percentile check, {what}, {name}: % of records reading below p"
            stdout.print(percentile_check_table(rows, title, stdout.width))
    from salarymodel.evaluation.groups import check_failures

    for failure in check_failures(groups):
        console.print(f"percentile check not held: {failure}", soft_wrap=True)


@app.command(short_help="Score a CSV with the champion, row for row.")
def predict(
    input_path: Path = typer.Option(..., "--input", exists=True, dir_okay=False),
    output_path: Path = typer.Option(..., "--output", dir_okay=False),
    source: str | None = typer.Option(
        None, help="Format of the input (a configured source); detected when omitted."
    ),
) -> None:
    """Score a CSV with the champion: one output row per input row, in order."""
    from salarymodel.core.prediction import predict_file
    from salarymodel.data.sources import SourceFormatError
    from salarymodel.registry.bundles import load_champion
    from salarymodel.registry.store import RegistryError
    from salarymodel.serving.loading import read_serving_bundle

    settings, sources = load_settings(), load_sources()
    try:
        # LightGBM's C library reads the boosters, as in the service: scoring a
        # file needs neither the lightgbm package nor the scikit-learn it imports.
        model, version = load_champion(settings, read_serving_bundle)
        scored = predict_file(input_path, output_path, model, settings, sources, source)
    except (SourceFormatError, RegistryError) as error:
        raise _fail(str(error)) from error
    errors = int((scored["error"] != "").sum())
    estimated = int(scored["estimate_usd"].notna().sum())
    console.print(
        f"scored {estimated:,} of {len(scored):,} rows with model v{version.version}"
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
    output: Path = typer.Option(
        Path("models/explanations"), help="Folder for the SHAP plots and premiums table."
    ),
) -> None:
    """Regenerate the champion's global SHAP outputs: plots and the premiums table."""
    from salarymodel.core.explanations import Explainer
    from salarymodel.data.dataset import load_training_data
    from salarymodel.data.sources import SourceFormatError
    from salarymodel.registry.bundles import load_champion
    from salarymodel.registry.store import RegistryError
    from salarymodel.report.explanation_plots import write_global_explanations

    settings, sources = load_settings(), load_sources()
    try:
        model, version = load_champion(settings)
        data = load_training_data(settings, sources)
    except (SourceFormatError, RegistryError) as error:
        raise _fail(str(error)) from error
    with steps(console, "explaining the champion with SHAP"):
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
    output: Path = typer.Option(Path("models/report"), help="Folder for report.html and PNGs."),
) -> None:
    """Write the market insights report (self-contained HTML, images embedded)."""
    from salarymodel.data.dataset import load_training_data
    from salarymodel.data.sources import SourceFormatError
    from salarymodel.registry.store import missing_store_error, store_exists
    from salarymodel.registry.views import champion_accuracy
    from salarymodel.report.build import build_report

    settings, sources = load_settings(), load_sources()
    if not store_exists(settings):  # the report reads the champion's accuracy from it
        raise _fail(str(missing_store_error(settings)))
    try:
        data = load_training_data(settings, sources)
    except SourceFormatError as error:
        raise _fail(str(error)) from error
    premiums, plots = _explanation_outputs(output)
    path = build_report(
        data.records,
        settings,
        output,
        premiums=premiums,
        premium_plots=plots,
        accuracy=champion_accuracy(settings),
    )
    console.print(f"report written to {path}")


def _explanation_outputs(output: Path):
    """Premiums table and plots from `salarymodel explain`, when they have been written."""
    import pandas as pd

    folder = output.parent / "explanations"
    table = folder / "premiums.csv"
    if not table.exists():
        return None, None
    # "NA" is a country code (Namibia), not a missing value: only empty cells are missing.
    return pd.read_csv(table, keep_default_na=False, na_values=[""]), sorted(folder.glob("*.png"))


@app.command(short_help="Serve the API and web page on 127.0.0.1.")
def serve(
    port: int | None = typer.Option(None, help="Port (default: serving.port in configs, 3000)."),
    host: str | None = typer.Option(
        None, help="Interface to bind (default: serving.host in configs, 127.0.0.1)."
    ),
    workers: int = typer.Option(2, min=1, help="Worker processes (2 suit a 2-core machine)."),
    export_only: bool = typer.Option(
        False, "--export-only", help="Export the champion to the BentoML store and exit."
    ),
) -> None:
    """Serve the champion over HTTP: API, web page at /, OpenAPI at /docs.json (BentoML)."""
    settings = load_settings()
    host = host or settings.serving.host
    port = settings.serving.port if port is None else port
    from salarymodel.serving.loading import ModelSourceError, export_champion
    from salarymodel.serving.server import serve as serve_http

    try:
        tag = export_champion(settings)
    except ModelSourceError as error:
        raise _fail(f"not serving: {error}") from error
    if export_only:
        console.print(f"exported {tag} to the BentoML model store")
        return
    console.print(f"serving {tag} on http://{host}:{port} (web page at /, Ctrl-C stops)")
    serve_http(host, port, workers, tag)


# ----- retraining and the champion alias -------------------------------------------------
def _reload_service(settings) -> None:
    """Ask a service running on the configured local address to load the champion."""
    import urllib.error
    import urllib.request

    from salarymodel.serving.admin_auth import read_token

    url = f"http://{settings.serving.host}:{settings.serving.port}/admin/reload"
    token = read_token(settings)  # the reload token `serve` created (serving.reload_token_*)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, method="POST", data=b"", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            body = json.loads(answer.read() or b"{}")
        console.print(
            f"service at {url} now serves v{body.get('model_version')} "
            f"(was v{body.get('previous_version')})"
        )
    except urllib.error.HTTPError as error:
        console.print(f"[yellow]{url} refused the reload:[/] {error.code} {error.reason}")
    except (urllib.error.URLError, OSError) as error:
        console.print(f"no service answering at {url} ({error}); it loads the champion on start")


def _print_counts(counts) -> None:
    console.print(
        f"[bold]{counts.source}[/]: {counts.rows_in:,} rows in = {counts.kept:,} accepted + "
        f"{counts.quarantined:,} quarantined {counts.reasons or ''}; "
        f"{counts.after_repeats:,} records after repeats"
    )


def _print_quarantine(quarantined, path, limit: int = 5) -> None:
    for row in quarantined.head(limit).to_dict("records"):
        console.print(f"  line {int(row['line'])}: {row['reason']}")
    if len(quarantined) > limit:
        console.print(f"  ... {len(quarantined) - limit:,} more")
    if path is not None:
        console.print(f"  quarantined rows with their reasons: {path}")


def _print_drift(drift, folder: Path) -> None:
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


def _print_new_data(result) -> None:
    """The new file's rows: accepted, quarantined (a few with their reasons), novel."""
    prepared = result.new.prepared
    _print_counts(prepared.counts)
    _print_quarantine(prepared.validation.quarantined, prepared.quarantine_file)
    console.print(
        f"{result.novel_records:,} new records; {result.repeats_of_existing:,} repeat "
        "records already in the training data (merged as one)"
    )


def _print_gate(result) -> None:
    """Every check of the retrain gate, passed or not, with its detail."""
    checks = [
        (check.name, "yes" if check.passed else "[red]no[/]", check.detail)
        for check in result.decision.checks
    ]
    title = f"Retrain gate (champion v{result.parent_version})"
    headers = ("check", "passed", "detail")
    stdout.print(fitted_table(title, headers, checks, stdout.width, headers))


def _print_outcome(result) -> None:
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
        None, help="Use a sample of this many raw rows per shipped source (quick runs)."
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
    from salarymodel.data.sources import SourceFormatError
    from salarymodel.registry.store import RegistryError
    from salarymodel.retraining.job import retrain as run_retrain

    settings, sources = load_settings(), load_sources()
    with steps(console, "retraining") as say, _terminate_as_exit():
        try:
            result = run_retrain(settings, sources, data, source, sample, progress=say)
        except (SourceFormatError, RegistryError) as error:
            raise _fail(str(error)) from error
    _print_new_data(result)
    _print_drift(result.drift, result.folder)
    _print_gate(result)
    _print_outcome(result)
    if as_json:
        sys.stdout.write(json_text(result.summary()))
    if result.promoted and reload:
        _reload_service(settings)
    if not result.promoted:
        raise typer.Exit(1)


@app.command(short_help="Drift of a new file against the training data.")
def drift(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="The new CSV."),
    source: str | None = typer.Option(None, help="Its format; detected when omitted."),
    output: Path = typer.Option(Path("models/drift"), help="Folder for drift.html and .json."),
    as_json: bool = typer.Option(False, "--json", help="Print the drift report as JSON on stdout."),
) -> None:
    """Drift of a new file against the training data, without training anything."""
    from salarymodel.data.dataset import load_training_data
    from salarymodel.data.sources import SourceFormatError
    from salarymodel.evaluation.drift import drift_report, write_drift_report
    from salarymodel.registry.bundles import load_champion
    from salarymodel.registry.store import RegistryError
    from salarymodel.retraining.job import read_new_file

    settings, sources = load_settings(), load_sources()
    with steps(console, "loading the champion") as say:
        try:
            model, _ = load_champion(settings)
            say(f"reading {data.name}")
            new = read_new_file(data, settings, sources, source, quarantine_dir=output)
            say("loading the training data")
            existing = load_training_data(settings, sources)
        except (SourceFormatError, RegistryError) as error:
            raise _fail(str(error)) from error
        say("measuring drift")
        report = drift_report(existing.records, new.records, model.builder)
        write_drift_report(report, output)
    _print_counts(new.prepared.counts)
    _print_quarantine(new.prepared.validation.quarantined, new.prepared.quarantine_file)
    _print_drift(report, output)
    if as_json:
        sys.stdout.write(json_text(report.to_dict()))


@app.command(short_help="Registered versions, their metrics, the champion.")
def versions(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """Registered versions with their metrics and data; which one is champion."""
    from salarymodel.registry.store import RegistryError, connect
    from salarymodel.registry.views import version_rows

    settings = load_settings()
    try:
        rows = version_rows(connect(settings), settings)
    except RegistryError as error:
        raise _fail(str(error)) from error
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
    """Move the champion alias to VERSION (an explicit decision: the gate is not asked)."""
    from salarymodel.registry.champion import champion_version
    from salarymodel.registry.champion import promote as promote_version
    from salarymodel.registry.store import RegistryError, connect

    settings = load_settings()
    try:
        client = connect(settings)
        before = champion_version(client, settings)
        target = promote_version(client, settings, version)
    except RegistryError as error:
        raise _fail(str(error)) from error
    was = f"v{before.version}" if before else "none"
    console.print(f"champion is now v{target.version} (was {was})")
    if reload:
        _reload_service(settings)


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
        raise _fail(str(error)) from error
    console.print(f"rolled back: champion is now v{after.version} (was v{before.version})")
    if reload:
        _reload_service(settings)


def main() -> None:
    """The console script: the Typer app, with configuration errors as one clear line.

    Anything else a command did not expect (a file no check foresaw, a full
    disk) is one ``error:`` line and exit 2 too, never a traceback: for
    ``retrain`` exit 1 means "champion kept", which a crash must not claim.
    """
    try:
        app()
    except ConfigError as error:
        console.print(f"[bold red]error:[/] {error}")
        raise SystemExit(2) from None
    except Exception as error:  # the last line of defence, by design
        text = " ".join(str(error).split())[:500]
        _fail(f"unexpected {type(error).__name__}: {text}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
