"""What the command line prints: tables that fit, progress in a pipe, strict JSON.

- :func:`fitted_table`: a Rich table readable at 80 columns and in a pipe
  (where Rich assumes 80). Column widths are chosen here, not by Rich, which
  cuts values and headers with an ellipsis once a table is too wide: every
  column keeps at least its longest word, so a header or a value that does
  not fit on one line wraps at its spaces onto the next, and nothing is cut.
  A cell of numbers (``81 80 79``, a date and time) never wraps. A table too
  wide for that is split into narrower tables that repeat the leading label
  columns, or, when even one value column does not fit beside them, printed
  as records (one ``name: value`` line each). No line ends in spaces.
- :func:`steps`: a long command's progress. On a terminal a spinner with the
  elapsed time; in a pipe or a log (where a spinner prints nothing until the
  end) one plain line per step, ``[   12.3 s] step``.
- :func:`json_text`: JSON for ``--json``, strict (NaN and infinities become
  ``null``, which ``jq`` and JSON parsers other than Python's accept).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

# Where a word too long for its column may break: after "_", ".." or "/"
# ("calibrated_" + "in_time", "2023-04.." + "2023-06"); never inside a number.
_BREAKS = re.compile(r".+?(?:_|\.\.|/)|.+")
# A cell of figures (counts, money, percents, a date and time, "12 vs 13"): it stays on
# one line, since wrapped at its spaces it turns into a column of digits.
_FIGURES = re.compile(r"[-+$€£%.,:\d ]*\d[-+$€£%.,:\d ]*(?: vs [-+$€£%.,:\d ]+)?")


def solid(cell: str) -> bool:
    """Whether ``cell`` is figures only, which are never wrapped."""
    return _FIGURES.fullmatch(cell.strip()) is not None


def pieces(word: str) -> list[str]:
    """A word cut after each of its break points ("_", "..", "/")."""
    return _BREAKS.findall(word) or [word]


def wrap(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` characters, broken at spaces, and a word
    longer than that at its break points (a piece longer still stays whole)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        for k, part in enumerate([word] if len(word) <= width else pieces(word)):
            joined = f"{line} {part}" if line and k == 0 else line + part
            if line and len(joined) > width:
                lines.append(line)
                line = part
            else:
                line = joined
    return "\n".join([*lines, line] if line else lines)


def _units(text: str, whole: bool) -> list[str]:
    # What may not be broken: a cell of figures, else each word (``whole``) or piece.
    if solid(text):
        return [text.strip()]
    return [p for w in text.split() for p in ([w] if whole else pieces(w))]


def _floors(columns: Sequence[Sequence[str]], whole: bool = False) -> list[int]:
    # The longest unbreakable unit of each column.
    return [max((len(u) for text in cells for u in _units(text, whole)), default=1)
            for cells in columns]  # fmt: skip


def gap(columns: Sequence[Sequence[str]], available: int) -> int:
    """Spaces between two columns: two, or one when two would not let every piece fit."""
    return 2 if sum(_floors(columns)) + 2 * (len(columns) - 1) <= available else 1


def column_widths(columns: Sequence[Sequence[str]], available: int) -> list[int]:
    """Widths for columns of plain cell texts (header first) within ``available`` characters.

    Each column starts at its widest cell; while the total is too wide, the
    column with the most room above its longest word gives up one character,
    then (words alone being too wide) above its longest piece. A table whose
    pieces alone are too wide keeps them (a terminal then wraps the line;
    nothing is cut).
    """
    widths = [max((len(text) for text in cells), default=1) for cells in columns]
    budget = available - gap(columns, available) * (len(columns) - 1)
    for floor in (_floors(columns, whole=True), _floors(columns)):
        while sum(widths) > budget:
            slack, i = max((w - f, i) for i, (w, f) in enumerate(zip(widths, floor, strict=True)))
            if slack <= 0:
                break
            widths[i] -= 1
    return widths


class Trimmed:
    """Renderables printed with no trailing spaces (Rich pads every table line to its width)."""

    def __init__(self, *renderables: RenderableType) -> None:
        self.renderables = renderables

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Each line of each renderable, its trailing blanks dropped, styles kept."""
        for renderable in self.renderables:
            for line in console.render_lines(renderable, options, pad=False, new_lines=False):
                yield from _rstrip(line)
                yield Segment.line()


def _rstrip(line: list[Segment]) -> list[Segment]:
    kept = list(line)
    while kept and (kept[-1].control or not kept[-1].text.rstrip()):
        kept.pop()
    if kept:
        last = kept[-1]
        kept[-1] = Segment(last.text.rstrip(), last.style)
    return kept


def _fits(columns: Sequence[Sequence[str]], width: int) -> bool:
    # Every column at its longest word (or cell of figures), one space apart.
    return sum(_floors(columns, whole=True)) + len(columns) - 1 <= width


def table_parts(
    columns: Sequence[Sequence[str]], left: Sequence[str], width: int
) -> list[list[int]]:
    """Column indices of the narrower tables a wide one is split into (``[]``: records).

    The leading label columns (headers in ``left``) start every part; the
    other columns follow in order, as many in each part as fit ``width``.
    """
    keys: list[int] = []
    for i, cells in enumerate(columns[:-1]):
        if cells[0] not in left:
            break
        keys.append(i)
    if _fits(columns, width):
        return [list(range(len(columns)))]
    parts: list[list[int]] = []
    for i in range(len(keys), len(columns)):
        if parts and _fits([columns[j] for j in [*parts[-1], i]], width):
            parts[-1].append(i)
        elif _fits([columns[j] for j in [*keys, i]], width):
            parts.append([*keys, i])
        else:
            return []  # one value beside the labels is already too wide: records
    return parts


def records(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], width: int
) -> RenderableType:
    """One block per row, one ``header: value`` line per cell, values wrapped to ``width``."""
    lines = [title, ""]
    for row in rows:
        for header, cell in zip(headers, row, strict=True):
            label = f"{header}:"
            text = Text.from_markup(cell).plain.strip()
            fits = solid(text) and len(label) + 1 + len(text) <= width
            room = width - len(label) - 1
            if not text or fits or (not solid(text) and _floors([[text]])[0] <= room):
                value = text if solid(text) else wrap(text, room)
                lines.append(
                    f"{label} {value}".rstrip().replace("\n", "\n" + " " * (len(label) + 1))
                )
            else:  # too long beside its name: on the lines below, indented
                value = text if solid(text) else wrap(text, width - 2)
                lines.append(label)
                lines.extend("  " + part for part in value.split("\n"))
        lines.append("")
    return Text("\n".join(lines[:-1]))


def fitted_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    left: Sequence[str] = (),
    styles: Sequence[str | None] | None = None,
) -> RenderableType:
    """A table of ``rows`` (cells may hold Rich markup) that fits ``width`` characters.

    Columns named in ``left`` are left-aligned, the others (numbers) right-aligned;
    ``styles`` gives each row's style (``None`` for none). Cells are wrapped here
    (:func:`wrap`), so Rich never has to cut one; a cell of figures is never
    wrapped. Too wide a table becomes several (:func:`table_parts`) or records.
    """
    plain = [[Text.from_markup(cell).plain for cell in row] for row in rows]
    columns = [[header, *(row[i] for row in plain)] for i, header in enumerate(headers)]
    parts = table_parts(columns, left, width)
    if not parts:
        return Trimmed(records(title, headers, rows, width))
    tables = []
    for k, part in enumerate(parts):
        name = title if len(parts) == 1 else f"{title} ({k + 1}/{len(parts)})"
        tables.append(
            _one_table(
                name,
                [headers[i] for i in part],
                [[row[i] for i in part] for row in rows],
                width,
                left,
                styles,
            )
        )
    return Trimmed(Group(*tables))


def _one_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    left: Sequence[str],
    styles: Sequence[str | None] | None,
) -> Table:
    plain = [[Text.from_markup(cell).plain for cell in row] for row in rows]
    columns = [[header, *(row[i] for row in plain)] for i, header in enumerate(headers)]
    widths = column_widths(columns, width)
    # SIMPLE_HEAD separates columns with a space; one more of padding makes two.
    padding = (0, 1) if gap(columns, width) == 2 else (0, 0)
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        padding=padding,
        title_justify="left",
    )
    for header, size in zip(headers, widths, strict=True):
        justify: Literal["left", "right"] = "left" if header in left else "right"
        table.add_column(wrap(header, size), justify=justify, width=size, overflow="fold")
    for i, (row, text) in enumerate(zip(rows, plain, strict=True)):
        # A cell with markup (a short colored word) is left to Rich; figures stay whole.
        cells = [
            c if c != p or solid(p) else wrap(c, w)
            for c, p, w in zip(row, text, widths, strict=True)
        ]
        table.add_row(*cells, style=styles[i] if styles else None)
    return table


@contextmanager
def steps(console: Console, first: str) -> Iterator[Callable[[str], None]]:
    """Report a long command's steps: yields ``say(step)``.

    A spinner with the elapsed time on a terminal; otherwise one line per step
    with the seconds since the start, and a last line when the work is done.
    """
    if console.is_terminal:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(first, total=None)
            yield lambda text: bar.update(task, description=text)
        return
    start = time.perf_counter()

    def say(text: str) -> None:
        elapsed = time.perf_counter() - start
        console.print(f"[{elapsed:7.1f} s] {text}", markup=False, highlight=False, soft_wrap=True)

    say(first)
    yield say
    say("done")


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def json_text(payload: Any) -> str:
    """``payload`` as indented strict JSON (NaN and infinities as null), one trailing newline."""
    return json.dumps(_strict(payload), indent=2, allow_nan=False, default=str) + "\n"


def _pct(value: Any, digits: int = 1) -> str:
    return "" if value is None else f"{100 * value:+.{digits}f}"


def group_accuracy_table(rows: Sequence[dict[str, Any]], title: str, width: int) -> RenderableType:
    """Per group: records, median estimate/actual - 1, MAE, each tail's misses, coverage (%)."""
    cells = [
        (row["dimension"], row["group"], f"{row['n']:,}", _pct(row["median_ratio"]),
         f"{row['mae_usd']:,.0f}", f"{100 * row['below_low']:.1f}",
         f"{100 * row['above_high']:.1f}", f"{100 * row['coverage']:.1f}")
        for row in rows
    ]  # fmt: skip
    headers = ("by", "group", "n", "median ratio (%)", "MAE (USD)", "below (%)", "above (%)",
               "in range (%)")  # fmt: skip
    return fitted_table(title, headers, cells, width, ("by", "group"))


def percentile_check_table(
    rows: Sequence[dict[str, Any]], title: str, width: int
) -> RenderableType:
    """Per group: the share (%) whose own salary reads below each percentile p; the worst gap."""
    levels = [key for key in rows[0] if key.startswith("p") and key[1:].replace(".", "").isdigit()]
    cells = []
    styles: list[str | None] = []
    for row in rows:
        held = {True: "yes", False: "NO", None: "n<min"}[row["within"]]
        cells.append(
            (row["dimension"], row["group"], f"{row['n']:,}",
             *(f"{row[level]:.1f}" for level in levels), f"{row['worst_gap']:.1f}", held)
        )  # fmt: skip
        styles.append("red" if row["within"] is False else None)
    headers = ("by", "group", "n", *(f"<{level}" for level in levels), "worst gap", "held")
    return fitted_table(title, headers, cells, width, ("by", "group"), styles)
