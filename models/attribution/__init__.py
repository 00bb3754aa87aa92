"""Attribution: what in the input drives a unit (its gradient under a ReLU backward rule), where a class
is seen (Grad-CAM), which units fire at a spot, and the pictures of a gradient; why a detector found a box
or a segmenter a class (detection_cams.py).

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
from .detection_cams import (
    CAM_METHODS,
    DetectionExplanation,
    SegmentationExplanation,
    box_score,
    cam_on_frame,
    eigencam,
    explain_detection,
    explain_segmentation,
    gradcam_from,
    segmentation_class_score,
    split_layer,
    track_box,
)
from .gradient_views import VIEWS, check_view, gaussian_blur, gradient_view, render_gradient
from .relu_rules import MODES, ReluRule, check_mode, relu_backward_rule

__all__ = [
    "CAM_METHODS",
    "DetectionExplanation",
    "SegmentationExplanation",
    "box_score",
    "cam_on_frame",
    "eigencam",
    "explain_detection",
    "explain_segmentation",
    "gradcam_from",
    "segmentation_class_score",
    "split_layer",
    "track_box",
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
