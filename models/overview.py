"""The whole network at a glance, as in the course notes: the input, then every layer's channels.

Plain arrays only (no matplotlib, no Qt): `livevis figure` draws them, and the same rows and tiling
serve any other view of the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from livevis.geometry import ROW_CHANNELS, GridLayout, row_layout, wrapped_layout

from .data.tensors import is_tensor_frame
from .engine import Engine
from .errors import OptionError
from .layers import INPUT, LayerInfo
from .producer import Producer

PER_LINE = ROW_CHANNELS
"""At most this many channels side by side; a layer with more wraps onto several lines."""


@dataclass(frozen=True)
class OverviewRow:
    """One row of the overview: a layer's first channels and the one symmetric scale they share."""

    name: str
    path: str
    shape: tuple[int, ...]
    """The layer's whole output shape, (C, H, W) or (F,)."""
    maps: np.ndarray = field(repr=False)
    """(n, h, w) float32: n of the layer's C channels; a vector layer is one (1, 1, F) strip of units."""
    scale: float
    """max |activation| over the whole layer (not only the channels shown): the colours' +-1."""
    image: np.ndarray | None = field(default=None, repr=False)
    """The input row only: the square of the frame the network sees, HxWx3 uint8 (None for a tensor input)."""

    @property
    def is_spatial(self) -> bool:
        return len(self.shape) == 3

    @property
    def channels_shown(self) -> int:
        return self.maps.shape[0] if self.is_spatial else self.maps.shape[2]

    @property
    def label(self) -> str:
        """Name (path where it differs) and shape, as the layer tree writes them."""
        return LayerInfo(self.path, self.name, self.shape, "").label


def select_overview_layers(engine: Engine, layers: str | Sequence[str] = "spatial") -> list[LayerInfo]:
    """`spatial`: every layer with maps; `all`: every layer; else the named ones, in execution order."""
    if layers == "spatial":
        return [layer for layer in engine.layers if layer.is_spatial and layer.path != INPUT]
    if layers == "all":
        return [layer for layer in engine.layers if layer.path != INPUT]
    if isinstance(layers, str):
        layers = [key.strip() for key in layers.split(",") if key.strip()]
    chosen = {engine.layer(key).path for key in layers}  # an unknown key raises, naming how to list them
    return [layer for layer in engine.layers if layer.path in chosen and layer.path != INPUT]


def _symmetric_scale(values: np.ndarray) -> float:
    return float(np.abs(values).max()) if values.size else 0.0


def _row(layer: LayerInfo, activation: np.ndarray, channels: int | None) -> OverviewRow:
    scale = _symmetric_scale(activation)
    if layer.is_spatial:
        maps = activation[:channels]
    else:
        maps = activation.reshape(1, 1, -1)[:, :, :channels]
    return OverviewRow(layer.name, layer.path, layer.shape, np.ascontiguousarray(maps, np.float32), scale)


def overview_rows(
    engine: Engine, frame: np.ndarray, layers: str | Sequence[str] = "spatial", channels: int | None = None
) -> list[OverviewRow]:
    """The input row (the network input's channels, normalised), then one row per layer, from ONE forward.

    `frame`: an RGB uint8 image, or a float32 C x H x W tensor input whose own channels make the input row.
    `channels`: the first N channels of each layer (units of a vector layer); None for all of them.
    """
    if channels is not None and channels < 1:
        raise OptionError(f"--channels {channels}: show at least 1 channel per layer")
    chosen = select_overview_layers(engine, layers)
    result = engine.run(frame, [layer.path for layer in chosen])
    host = {path: tensor.detach().float().cpu().numpy() for path, tensor in result.activations.items()}
    if is_tensor_frame(frame):
        network_input, image = np.asarray(frame, np.float32), None
    else:
        network_input = result.input[0].detach().float().cpu().numpy()
        crop = result.crop
        image = np.ascontiguousarray(np.asarray(frame)[crop.y : crop.y + crop.h, crop.x : crop.x + crop.w])
    first = engine.layers[0]
    input_row = OverviewRow(
        first.name, INPUT, tuple(network_input.shape), network_input, _symmetric_scale(network_input), image
    )
    return [input_row, *(_row(layer, host[layer.path], channels) for layer in chosen)]


def tile_row(row: OverviewRow, per_line: int = PER_LINE) -> tuple[np.ndarray, GridLayout]:
    """A row's maps in one float32 mosaic (NaN on the 1-pixel separators and empty tiles) and its layout.

    A vector layer is one strip of units, never wrapped."""
    count, tile_h, tile_w = row.maps.shape
    layout = wrapped_layout(count, tile_h, tile_w, per_line if row.is_spatial else 1)
    mosaic = np.full((layout.height, layout.width), np.nan, np.float32)
    for channel in range(count):
        x, y, w, h = layout.tile_rect(channel)
        mosaic[y : y + h, x : x + w] = row.maps[channel]
    return mosaic, layout


class NetworkProducer(Producer):
    """The network overview live: every channel of each layer asked for (`network_rows`: the rows a window
    has in sight), one signed scale per layer, as the course notes draw a network. Only those rows are
    computed."""

    def layers(self, layer, options):
        return set(options["network_rows"])

    def render(self, ctx):
        r, images, layouts = ctx.renderer, {}, {}
        for path in ctx.options["network_rows"]:
            activation = ctx.result.activations[path]
            maps, tile = r.maps_of(r.asarray(activation))
            low, high, _ = r.channel_stats(maps)
            layouts[path] = row_layout(tuple(activation.shape))
            images[path] = r.grid_image(r.levels(maps, low, high, "signed"), tile, layouts[path], "signed")
        return {**images, "layouts": layouts}

    def finish(self, host, ctx):
        """{layer path: (its row's picture, the row's layout)}"""
        return {"network_rows": {path: (host[path], layout) for path, layout in host["layouts"].items()}}
