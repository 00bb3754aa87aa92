"""Optimised images: what a unit wants to see, found by regularised activation maximisation, in four
swappable parts as in Lucid and Lucent: a parametrisation (`param`), transforms (`transforms`),
composable objectives (`objectives`) and the optimiser loop (`run`); `cache` and `files` keep and write
the results.

from livevis.models.dream import plan, dream, channel, neuron, logit, direction
"""

from .files import classify, contact_sheet, read_png, save_png
from .objectives import Objective, channel, direction, logit, neuron
from .run import DreamRequest, DreamResult, check_options, dream, load_cached, optimise, plan

__all__ = [
    "DreamRequest",
    "DreamResult",
    "Objective",
    "channel",
    "check_options",
    "classify",
    "contact_sheet",
    "direction",
    "dream",
    "load_cached",
    "logit",
    "neuron",
    "optimise",
    "plan",
    "read_png",
    "save_png",
]
