"""Activations to pictures on the device: colour tables and levels (`base`), and the two renderers that
compose the same steps, torch ops on a GPU (`torch_renderer`) and numpy with OpenCV on the CPU
(`opencv_renderer`)."""

from .base import COLORMAPS, LEVELS, GridLayout, MapPeak, Renderer, check_colormap, colormap_table, crop_box
from .opencv_renderer import OpenCVRenderer
from .torch_renderer import TorchRenderer

__all__ = [
    "COLORMAPS",
    "LEVELS",
    "GridLayout",
    "MapPeak",
    "OpenCVRenderer",
    "Renderer",
    "TorchRenderer",
    "check_colormap",
    "colormap_table",
    "crop_box",
]
