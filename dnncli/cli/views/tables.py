"""Tables fitted to the terminal: natural column widths, the least needed columns left out (and named) where they
do not all fit; a table too wide even so is printed whole and the terminal wraps it. Plain fixed-width tables for
pipes; commands printed whole, to paste."""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table


@dataclass
class Col:
    """A table column: its header, alignment, style, and how much it is needed (0 is never left out)."""

    header: str
    justify: str = "right"
    style: str | None = None
    drop: int = 0  # higher: left out sooner when the table is too wide
    wrap: bool = False  # text that may wrap onto more lines (at spaces); numbers never do


def natural_width(console: Console, renderable) -> int:
    return Measurement.get(console, console.options.update_width(10**5), renderable).maximum


def rich_table(cols: list[Col], rows: list[list], title: str | None, caption: str | None) -> Table:
    t = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
    )
    for c in cols:
        t.add_column(c.header, justify=c.justify, style=c.style, no_wrap=not c.wrap, overflow="fold")
    for r in rows:
        t.add_row(*r)
    return t


def fitted_table(
    console: Console, cols: list[Col], rows: list[list], width: int, title: str | None = None, note: str = ""
) -> Table:
    """A table at its natural column widths, leaving out the most droppable columns until it fits ``width``.

    Text columns may wrap. A table that still does not fit keeps its natural width (``natural_width``
    attribute): ``show`` prints it so, and the terminal wraps its lines, rather than cut a cell.
    """
    keep = list(range(len(cols)))
    left_out: list[str] = []
    while True:
        t = rich_table([cols[k] for k in keep], [[r[k] for k in keep] for r in rows], title, None)
        if natural_width(console, t) <= width:
            break
        droppable = [k for k in keep if cols[k].drop > 0]
        if not droppable:
            break
        worst = max(droppable, key=lambda k: (cols[k].drop, k))
        keep.remove(worst)
        left_out.append(cols[worst].header)
    caption = note
    if left_out:
        caption = (note + "; " if note else "") + f"left out to fit {width} columns: {', '.join(left_out)}"
    if caption:
        t = rich_table([cols[k] for k in keep], [[r[k] for k in keep] for r in rows], title, caption)
    natural = natural_width(console, t)
    if natural > width and not any(cols[k].wrap for k in keep):
        t.natural_width = natural  # nothing may wrap: print it whole, the terminal wraps its lines
    return t


def plain_table(cols: list[Col], rows: list[list[str]]) -> list[str]:
    """A fixed-width text table: every cell whole, whatever the terminal's width."""
    widths = [max([len(c.header)] + [len(str(r[j])) for r in rows]) for j, c in enumerate(cols)]

    def line(cells):
        parts = [str(v).ljust(w) if c.justify == "left" else str(v).rjust(w) for v, w, c in zip(cells, widths, cols)]
        return "  ".join(parts).rstrip()

    return [line([c.header for c in cols]), line(["-" * w for w in widths])] + [line(r) for r in rows]


def even_indices(n: int, k: int) -> list[int]:
    """``k`` indices out of ``n``, evenly spread, the first and last included."""
    if n <= k:
        return list(range(n))
    if k <= 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


@dataclass
class Command:
    """A command line to paste: printed whole (the terminal wraps it), never broken with newlines."""

    text: str


def show(console: Console, parts: list) -> None:
    """Print each part whole: a command soft-wrapped (pasteable), a table too wide for the terminal at its width."""
    for part in parts:
        if isinstance(part, Command):
            console.print(part.text, soft_wrap=True, highlight=False, markup=False)
        elif getattr(part, "natural_width", None):
            width = console.width
            console.width = part.natural_width  # print() caps its width at the console's
            try:
                console.print(part, crop=False)
            finally:
                console.width = width
        else:
            console.print(part)
