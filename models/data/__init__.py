"""Inputs as users have them: image and video files read one way everywhere, tensor files fed as they
are, the labelled datasets that work offline, and MNIST's own preprocessing of a drawn digit."""

from .images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_image
from .tensors import TENSOR_SUFFIXES, is_tensor_frame, read_tensor

__all__ = ["IMAGE_SUFFIXES", "TENSOR_SUFFIXES", "VIDEO_SUFFIXES", "is_tensor_frame", "read_image", "read_tensor"]
