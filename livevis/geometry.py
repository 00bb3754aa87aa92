"""Where each channel's tile sits in a grid image, as plain numbers.

The renderers tile with it (models/render.py) and the grid widget maps the mouse with it
(widgets/channel_grid.py): one definition, importable without torch and without Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

UNIT_TILE = 3
"""Side of the tile a unit of an (N, F) layer gets in the grid."""


@dataclass(frozen=True)
class GridLayout:
    """Tile c sits at row c // cols, column c % cols, with separators around every tile. A tile of
    tile_h x tile_w map cells is drawn `scale` times enlarged with `scale`-pixel separators (nearest neighbour),
    or, where `cell_h` and `cell_w` are given, at that many pixels with 1-pixel separators (a grid fitted to the
    pane that shows it)."""

    channels: int
    rows: int
    cols: int
    tile_h: int
    tile_w: int
    scale: int = 1
    cell_h: int = 0
    cell_w: int = 0

    @property
    def drawn(self) -> tuple[int, int]:
        """(h, w) pixels a tile is drawn at."""
        return (self.cell_h, self.cell_w) if self.cell_h else (self.tile_h * self.scale, self.tile_w * self.scale)

    @property
    def line(self) -> int:
        """The separators' width in pixels."""
        return 1 if self.cell_h else self.scale

    @property
    def height(self) -> int:
        return self.rows * (self.drawn[0] + self.line) + self.line

    @property
    def width(self) -> int:
        return self.cols * (self.drawn[1] + self.line) + self.line

    def tile_rect(self, channel: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) of a channel's tile in grid pixels."""
        row, col = divmod(channel, self.cols)
        (h, w), line = self.drawn, self.line
        return line + col * (w + line), line + row * (h + line), w, h

    def channel_at(self, x: float, y: float) -> int | None:
        """The channel under grid pixel (x, y); None on a separator, an empty tile or outside."""
        (h, w), line = self.drawn, self.line
        col, dx = divmod(x - line, w + line)
        row, dy = divmod(y - line, h + line)
        if not (0 <= col < self.cols and 0 <= row < self.rows):
            return None
        if dx >= w or dy >= h:
            return None
        channel = int(row) * self.cols + int(col)
        return channel if channel < self.channels else None

    def moved(self, channel: int, d_row: int, d_col: int) -> int:
        """The channel one step away in the grid, clamped to the grid's channels."""
        row, col = divmod(channel, self.cols)
        row = min(max(row + d_row, 0), self.rows - 1)
        col = min(max(col + d_col, 0), self.cols - 1)
        return min(row * self.cols + col, self.channels - 1)


def tile_of(shape: tuple[int, ...]) -> tuple[int, int]:
    """The (h, w) tile a channel of a layer with this output shape (C, H, W) or (F,) is drawn as."""
    return (shape[1], shape[2]) if len(shape) == 3 else (UNIT_TILE, UNIT_TILE)


def grid_layout(channels: int, tile_h: int, tile_w: int, aspect: float = 1.0, scale: int = 1) -> GridLayout:
    """Near-square layout whose whole image is about `aspect` (width / height)."""
    cols = max(1, min(channels, math.ceil(math.sqrt(channels * aspect * (tile_h + 1) / (tile_w + 1)))))
    rows = math.ceil(channels / cols)
    return GridLayout(channels, rows, cols, tile_h, tile_w, scale)


@lru_cache(maxsize=64)
def fitted_layout(channels: int, tile_h: int, tile_w: int, width: int, height: int) -> GridLayout:
    """The layout whose tiles come out largest in a picture of (width, height) pixels, each keeping its map's
    shape: every column count is tried. Tiles are never drawn smaller than their map."""
    best = (0.0, 1)
    for cols in range(1, channels + 1):
        rows = math.ceil(channels / cols)
        zoom = min(((width - 1) / cols - 1) / tile_w, ((height - 1) / rows - 1) / tile_h)
        if zoom > best[0]:
            best = (zoom, cols)
    zoom, cols = best
    zoom = max(zoom, 1.0)
    cell_h, cell_w = max(tile_h, math.floor(zoom * tile_h)), max(tile_w, math.floor(zoom * tile_w))
    return GridLayout(channels, math.ceil(channels / cols), cols, tile_h, tile_w, 1, cell_h, cell_w)


ROW_CHANNELS = 32
"""At most this many channels a line in a layer's row of the network overview."""
ROW_UNITS = 100
"""At most this many units a line for a layer without spatial maps."""


def wrapped_layout(channels: int, tile_h: int, tile_w: int, per_line: int = ROW_CHANNELS) -> GridLayout:
    """Channels side by side, at most `per_line` a line, the lines filled evenly (40 -> 2 x 20): a layer's row
    in the network overview and in `livevis figure`."""
    lines = max(1, math.ceil(channels / per_line))
    cols = max(1, math.ceil(channels / lines))
    return GridLayout(channels, math.ceil(channels / cols), cols, tile_h, tile_w)


def row_layout(shape: tuple[int, ...]) -> GridLayout:
    """The overview's layout of a layer with this output shape (C, H, W) or (F,)."""
    return wrapped_layout(shape[0], *tile_of(shape), ROW_CHANNELS if len(shape) == 3 else ROW_UNITS)
