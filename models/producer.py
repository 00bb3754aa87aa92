"""What a view computes: a `Producer` says what it needs from a forward pass and draws from it.

The pipeline runs ONE forward over the union of what the asked-for views need (`layers`, `inputs`,
`backward`), then each producer's `render` draws on the device from that result and returns device arrays
and plain values by name, its pictures under the names its declaration lists (`livevis.views.ViewSpec`);
`finish` turns what came back to the host into plain values (a peak, the top-5). `summary`, `report` and
`for_file` say what `render` prints and writes of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from livevis.geometry import GridLayout, fitted_layout, grid_layout

from .engine import CropRect, ForwardResult
from .layers import LayerInfo
from .render.base import Renderer

if TYPE_CHECKING:
    from .attribution import BackwardRequest
    from .engine import Engine
    from .pipeline import ViewOptions


def scale_crop(crop: CropRect, sx: float, sy: float) -> tuple[int, int, int, int]:
    """The crop in the pixels of a frame shrunk by (sx, sy)."""
    x, y = round(crop.x * sx), round(crop.y * sy)
    return (x, y, max(1, round((crop.x + crop.w) * sx) - x), max(1, round((crop.y + crop.h) * sy) - y))


@dataclass
class RenderContext:
    """One forward result and the options, with the steps several views share computed once, lazily:
    the grid, the overlay and the zoomed tile all start from the same maps and statistics."""

    renderer: Renderer
    result: ForwardResult
    layer: LayerInfo
    options: ViewOptions
    engine: Engine
    """The model the result came from (for what a view must find out about it once)."""
    with_arrays: bool = False
    """Views also hand back their raw numbers (for saving), not only their pictures."""
    tensor_input: bool = False
    """The frame was a tensor given as the network input (`result.frame` is a picture of it)."""
    memory: dict = field(default_factory=dict)
    """What a view keeps from one frame to the next of the same pipeline (the concepts' last factors), by
    the view's name."""
    unedited: ForwardResult | None = None
    """The same input through the network without the request's edits, where they are compared."""

    @cached_property
    def maps(self):
        """The selected layer as (C, N) maps in the renderer's arrays, and the (h, w) tile of a channel."""
        r = self.renderer
        return r.maps_of(r.asarray(self.result.activations[self.layer.path]))

    @cached_property
    def grid_layout(self) -> GridLayout:
        """Where each channel's tile sits in the grid: fitted to the size the grid is shown at, else near-square
        at `grid_scale` (the grid and the prefix tokens laid out as it)."""
        o, (maps, tile) = self.options, self.maps
        if o.grid_size is not None:
            return fitted_layout(maps.shape[0], *tile, *o.grid_size)
        return grid_layout(maps.shape[0], *tile, 1.0, o.grid_scale)

    @cached_property
    def stats(self):
        """Per-channel minimum, maximum and mean of the selected layer."""
        return self.renderer.channel_stats(self.maps[0])

    @cached_property
    def shown_frame(self):
        """The frame at the size the window shows it, and the network's crop in its pixels."""
        r, o, frame = self.renderer, self.options, self.frame
        shown = frame if o.display_size is None else r.fit_within(frame, *o.display_size)
        return shown, scale_crop(self.result.crop, shown.shape[1] / frame.shape[1], shown.shape[0] / frame.shape[0])

    @cached_property
    def selected_levels(self):
        """The selected channel's (h, w) levels, on its own scale."""
        (maps, tile), (low, high, _) = self.maps, self.stats
        c = slice(self.options.channel, self.options.channel + 1)
        levels = self.renderer.levels(maps[c], low[c], high[c], self.options.colormap, per_channel=True)
        return self.renderer.as_tiles(levels, tile)[0]

    @cached_property
    def peak_index(self):
        return self.renderer.peak_index(self.maps[0], self.options.channel)

    @cached_property
    def frame(self):
        return self.renderer.asarray(self.result.frame)


@dataclass(frozen=True)
class HostContext:
    """What `finish` may use: the layer, the options, the crop and the engine's labels."""

    engine: Engine
    layer: LayerInfo
    options: ViewOptions
    crop: CropRect


class Producer:
    """What one view computes from a forward pass. Subclasses override what they need; one instance serves
    one pipeline (`RenderContext.memory` keeps what it carries from frame to frame)."""

    def check(self, engine: Engine, layer: LayerInfo, options: ViewOptions) -> None:
        """Raises `OptionError` where it cannot draw what the options ask of this layer (a command stops with
        that one line; in the window its pane says why instead)."""

    def layers(self, layer: LayerInfo, options: ViewOptions) -> set[str]:
        """The layer paths it needs captured besides the selected layer, which every pass captures."""
        return set()

    def inputs(self, engine: Engine, layer: LayerInfo, options: ViewOptions) -> set[str]:
        """Modules whose call arguments it needs kept (a transformer's attention modules)."""
        return set()

    def backward(self, engine: Engine, layer: LayerInfo, options: ViewOptions) -> BackwardRequest | None:
        """What it needs backpropagated in the same pass (one view at most asks)."""
        return None

    def render(self, ctx: RenderContext) -> dict[str, Any]:
        """Device arrays (or host numbers) by name; its pictures under the names its `ViewSpec` lists, none
        where it does not apply (a transformer's view of a convolutional network)."""
        return {}

    def finish(self, host: Mapping[str, Any], ctx: HostContext) -> dict[str, Any]:
        """Plain values made from what `render` returned, now on the host; by default that, as it is."""
        return dict(host)

    def summary(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """What `render --json` says of it, from the frame's values."""
        return {}

    def report(self, values: Mapping[str, Any], engine: Engine) -> list[str]:
        """The lines `render` prints of it."""
        return []

    def for_file(self, images: Mapping[str, np.ndarray], values: Mapping[str, Any], title: str) -> dict:
        """Its pictures as `render` writes them (a legend added, say); by default as shown."""
        return dict(images)
