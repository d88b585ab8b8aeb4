"""The evaluation as the command line prints it: tables, verdicts and groups."""

from __future__ import annotations

from rich.console import RenderableType

from salarymodel.cli.application import console, stdout
from salarymodel.cli.terminal import fitted_table
from salarymodel.vocabulary import ALL, FUSED_MODEL


def evaluation_table(rows: list[dict], title: str) -> RenderableType:
    """A Rich table of CV metrics: one line per model and source."""
    cells = [
        (row["model"], row["source"], f"{row['n']:,}", f"{row['r2_log']:.3f}",
         f"{row['mae_usd']:,.0f}", f"{row['mdape']:.1f}")
        for row in rows
    ]  # fmt: skip
    headers = ("model", "source", "n", "R² (log)", "MAE (USD)", "MdAPE (%)")
    styles = ["bold" if row["model"] == FUSED_MODEL else None for row in rows]
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


def print_verdicts(verdicts: list[dict]) -> None:
    """The fused model against its rivals: word, MAE difference and paired interval."""
    from salarymodel.promotion.verdicts import printed_lines

    for line in printed_lines(verdicts):
        console.print(line, soft_wrap=True)  # one verdict, one line in a log


def print_groups(groups: dict) -> None:
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
