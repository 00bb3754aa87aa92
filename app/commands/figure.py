"""`livevis figure`: the course notes' overview of a network on one input, as a PNG, PDF or SVG.

The input and its normalised channels first, then a row per layer in execution order, every map in the
app's signed colours with one symmetric scale per layer, so that a weak layer looks weak.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livevis.app.commands.common import add_model_options, load_engine
from livevis.models.errors import OutputError
from livevis.models.overview import PER_LINE, OverviewRow, tile_row

FIGURE_WIDTH_IN = 12.0
MARGIN_IN = 0.25
TITLE_IN = 0.28
GAP_IN = 0.12
STRIP_IN = 0.3
"""Height of a vector layer's strip of units."""
MAX_ROW_IN = 3.0
"""A row of few large maps is shrunk to this height rather than spread over the whole width."""
DPI = 100
FORMATS = (".png", ".pdf", ".svg")
MAX_PIXELS = 60_000
"""Below Agg's 2^16 pixel limit per side: a taller figure is written at a lower resolution."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    figure = commands.add_parser(
        "figure", help="the input and every layer's channels in one figure (signed colours, one scale per layer)"
    )
    figure.add_argument(
        "input",
        metavar="INPUT",
        help="an image file, a video file (its first frame) or a stream URL (its current frame)",
    )
    add_model_options(figure, device=False)
    figure.add_argument(
        "--layers",
        default="spatial",
        metavar="L1,L2,...|all",
        help="comma-separated layers, or `all` (default: every layer with spatial maps)",
    )
    figure.add_argument(
        "--channels", type=_positive, metavar="N", help="the first N channels of each layer (default: all of them)"
    )
    figure.add_argument("--out", default="figure.png", metavar="FIG.png", help="png, pdf or svg (default: figure.png)")
    figure.set_defaults(handler=run, device="cpu")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of channels")
    return value


def signed_colormap():
    """The app's signed table (blue, white at zero, red) as a matplotlib colormap; separators in its grey."""
    from matplotlib.colors import ListedColormap

    from livevis.models.render.base import LEVELS, colormap_table

    table = colormap_table("signed") / 255.0
    return ListedColormap(table[:LEVELS], name="livevis_signed").with_extremes(bad=table[LEVELS])


@dataclass
class OverviewFigure:
    figure: object
    """A bare matplotlib Figure (no pyplot state)."""
    titles: list[str]
    """One per row, top to bottom: the input row first."""
    axes: dict[str, list] = field(default_factory=dict)
    """The Axes of each row by layer path: the input row's image (when there is one) then its channels."""
    dpi: float = DPI

    def save(self, out: Path) -> Path:
        try:
            self.figure.savefig(out, dpi=self.dpi)
        except OSError as exc:
            raise OutputError(f"could not write {out}: {exc.strerror or exc}") from None
        return out


def row_title(row: OverviewRow) -> str:
    """Name and shape, which channels are shown, and the scale of the colours."""
    total = row.shape[0] if row.is_spatial else row.shape[-1]
    unit = "channels" if row.is_spatial else "units"
    shown = f", the first {row.channels_shown} of {total} {unit}" if row.channels_shown < total else ""
    what = ", normalised network input" if row.path == "input" else ""
    return f"{row.label}{what}{shown}   (colours +-{row.scale:.3g})"


def _input_panels(row: OverviewRow, width: float) -> tuple[int, float]:
    count = row.maps.shape[0] + (row.image is not None)
    side = min(MAX_ROW_IN, (width - GAP_IN * (count - 1)) / count)
    return count, side


def _row_height(row: OverviewRow, mosaic: np.ndarray | None, width: float) -> float:
    if row.path == "input":
        return _input_panels(row, width)[1]
    if not row.is_spatial:
        return STRIP_IN
    height, span = mosaic.shape
    return min(MAX_ROW_IN, width * height / span)


def draw_overview(rows: list[OverviewRow], heading: str = "", per_line: int = PER_LINE) -> OverviewFigure:
    """Every row on one bare Figure, laid out in inches from the top; returns the figure and its row titles."""
    from matplotlib.figure import Figure

    cmap = signed_colormap()
    width = FIGURE_WIDTH_IN - 2 * MARGIN_IN
    mosaics = [tile_row(row, per_line)[0] if row.path != "input" and row.is_spatial else None for row in rows]
    heights = [_row_height(row, mosaic, width) for row, mosaic in zip(rows, mosaics, strict=True)]
    heading_in = 0.45 if heading else 0.0
    total = MARGIN_IN * 2 + heading_in + sum(TITLE_IN + h + GAP_IN for h in heights)
    dpi = min(DPI, MAX_PIXELS / total)
    figure = Figure(figsize=(FIGURE_WIDTH_IN, total), dpi=dpi)
    if heading:
        figure.text(0.5, 1 - (MARGIN_IN + 0.15) / total, heading, ha="center", va="center", fontsize=13)

    def box(left: float, top: float, w: float, h: float) -> list[float]:  # inches from the top left
        return [left / FIGURE_WIDTH_IN, 1 - (top + h) / total, w / FIGURE_WIDTH_IN, h / total]

    drawn = OverviewFigure(figure, [], {}, dpi)
    top = MARGIN_IN + heading_in
    for row, mosaic, height in zip(rows, mosaics, heights, strict=True):
        title = row_title(row)
        figure.text(
            MARGIN_IN / FIGURE_WIDTH_IN,
            1 - (top + TITLE_IN * 0.55) / total,
            title,
            va="center",
            fontsize=9,
            family="monospace",
        )
        drawn.titles.append(title)
        top += TITLE_IN
        limit = row.scale or 1.0
        axes = []
        if row.path == "input":
            count, side = _input_panels(row, width)
            pictures = ([row.image] if row.image is not None else []) + list(row.maps)
            for index, picture in enumerate(pictures):
                ax = figure.add_axes(box(MARGIN_IN + index * (side + GAP_IN), top, side, side))
                if picture.ndim == 3:
                    ax.imshow(picture, interpolation="antialiased", aspect="auto")
                else:
                    crisp = side * dpi >= picture.shape[1]
                    ax.imshow(
                        picture,
                        cmap=cmap,
                        vmin=-limit,
                        vmax=limit,
                        aspect="auto",
                        interpolation="nearest" if crisp else "antialiased",
                    )
                ax.set_axis_off()
                axes.append(ax)
        elif not row.is_spatial:  # a strip of units: no separators, they would fill its height
            ax = figure.add_axes(box(MARGIN_IN, top, width, height))
            ax.imshow(row.maps[0], cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest", aspect="auto")
            ax.set_axis_off()
            axes.append(ax)
        else:
            span = height * mosaic.shape[1] / mosaic.shape[0]
            ax = figure.add_axes(box(MARGIN_IN, top, span, height))
            # enlarged: crisp cells; shrunk: filtered, or nearest neighbour would drop whole separators
            shrunk = span * dpi < mosaic.shape[1]
            ax.imshow(
                mosaic,
                cmap=cmap,
                vmin=-limit,
                vmax=limit,
                aspect="auto",
                interpolation="antialiased" if shrunk else "nearest",
            )
            ax.set_axis_off()
            axes.append(ax)
        drawn.axes[row.path] = axes
        top += height + GAP_IN
    return drawn


def figure_heading(engine, source: str | Path) -> str:
    """Which model, which weights (UNTRAINED says so), which input (a stream's URL without its password)."""
    from livevis.app.sources.network import display_url, is_stream_url

    name = display_url(source) if is_stream_url(source) else Path(source).name
    return f"{engine.name} [{engine.weights.label}] on {name}"


def run(args: argparse.Namespace) -> int:
    from livevis.app.commands.embed import check_figure_path
    from livevis.app.sources.files import read_frame
    from livevis.models.overview import overview_rows

    # bad input fails before a model loads
    out = Path(args.out)
    if out.suffix.lower() not in FORMATS:
        raise OutputError(f"cannot write a figure as {out.name!r}; name it .png, .pdf or .svg")
    check_figure_path(out)
    frame = read_frame(args.input)
    engine = load_engine(args)
    layers = args.layers if args.layers in ("spatial", "all") else [k.strip() for k in args.layers.split(",")]
    rows = overview_rows(engine, frame, layers, args.channels)
    drawn = draw_overview(rows, figure_heading(engine, args.input))
    drawn.save(out)
    print(f"wrote {out}: the input and {len(rows) - 1} layers of {engine.name}")
    return 0
