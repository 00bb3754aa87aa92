"""Detectors and segmenters: what their outputs are, how the engine calls them, how their results are drawn
and explained."""

from .outputs import CLASSIFY, DETECT, MAPS, SEGMENT, adapt_model, output_task, unsupported_model

__all__ = ["CLASSIFY", "DETECT", "MAPS", "SEGMENT", "adapt_model", "output_task", "unsupported_model"]
