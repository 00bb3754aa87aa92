"""Attribution: what in the input drives a unit (its gradient under a ReLU backward rule), where a class
is seen (Grad-CAM), which units fire at a spot, and the pictures of a gradient.

from livevis.models.attribution import unit_gradient, grad_cam, relu_backward_rule
"""

from .backprop import (
    PASS_MODES,
    BackpropResult,
    BackwardRequest,
    GradCamResult,
    PassResult,
    deconvolution_sees_the_input,
    forward_backward,
    grad_cam,
    map_cell,
    rank_units_at,
    unit_gradient,
)
from .gradient_views import VIEWS, check_view, gaussian_blur, gradient_view, render_gradient
from .relu_rules import MODES, ReluRule, check_mode, relu_backward_rule

__all__ = [
    "MODES",
    "PASS_MODES",
    "VIEWS",
    "BackpropResult",
    "BackwardRequest",
    "GradCamResult",
    "PassResult",
    "ReluRule",
    "check_mode",
    "check_view",
    "deconvolution_sees_the_input",
    "forward_backward",
    "gaussian_blur",
    "grad_cam",
    "gradient_view",
    "map_cell",
    "rank_units_at",
    "relu_backward_rule",
    "render_gradient",
    "unit_gradient",
]
