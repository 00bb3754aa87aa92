"""The PyTorch side of livevis: models, layers, activations, rendering. No Qt here.

from livevis.models import Engine, Visualizer, ViewOptions
engine = Engine.load("alexnet", weights="none")
views = Visualizer(engine, ViewOptions(layer="conv5", channel=3)).process(rgb_frame)
views.images["overlay"], views.values["top5"]
"""

from .engine import CropRect, Engine, ForwardResult, Prediction, PreparedFrame, available_devices, pick_device
from .errors import (
    ChannelOutOfRangeError,
    ColormapError,
    InputError,
    LayerNotFoundError,
    LivevisError,
    ModelNotFoundError,
    OptionError,
    WeightsError,
)
from .layers import ActivationCapture, LayerInfo
from .pipeline import FrameViews, ViewOptions, Visualizer
from .producer import HostContext, Producer, RenderContext
from .render.base import COLORMAPS, GridLayout
from .zoo.registry import ModelSpec, get_spec, model_names

__all__ = [
    "COLORMAPS",
    "ActivationCapture",
    "ChannelOutOfRangeError",
    "ColormapError",
    "OptionError",
    "CropRect",
    "Engine",
    "ForwardResult",
    "FrameViews",
    "GridLayout",
    "InputError",
    "LayerInfo",
    "LayerNotFoundError",
    "LivevisError",
    "ModelNotFoundError",
    "ModelSpec",
    "Prediction",
    "PreparedFrame",
    "ViewOptions",
    "Visualizer",
    "HostContext",
    "Producer",
    "RenderContext",
    "WeightsError",
    "get_spec",
    "model_names",
    "pick_device",
    "available_devices",
]
