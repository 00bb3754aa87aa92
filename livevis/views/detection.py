"""The detections view: a detector's boxes (labels, scores, Mask R-CNN's masks, Keypoint R-CNN's keypoints) or a
segmenter's classes, drawn on the frame; the score threshold; the detection the explanations explain."""

from __future__ import annotations

from livevis.views import Option, Place, ViewSpec

SCORE_THRESHOLDS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9)


def _box_or_none(value) -> bool:
    return value is None or (
        isinstance(value, tuple) and len(value) == 5 and all(isinstance(v, int | float) for v in value)
    )


DETECTIONS = ViewSpec(
    name="detections",
    producer="livevis.models.detection.view:DetectionsProducer",
    title="Detections",
    pane="livevis.app.panes.detections:DetectionsPane",
    pictures=("detections", "segmentation"),
    recorded=("detections", "segmentation"),
    arrays=(
        ("boxes", "boxes"),
        ("scores", "scores"),
        ("labels", "labels"),
        ("masks", "masks"),
        ("keypoints", "keypoints"),
        ("segmentation_scores", "segmentation"),
    ),
    options=(
        Option(
            "score_threshold",
            0.5,
            choices=SCORE_THRESHOLDS,
            what="score threshold",
            parse=float,
            flag="--score-threshold",
            help="the detections drawn: those scoring at least this (every one is saved)",
            toolbar="score",
            persist=True,
        ),
        Option(
            "box",
            None,
            check=lambda value: value is None or (isinstance(value, int) and value >= 0),
            expects="a detection's index (0 is the first `render --json` lists) or none",
            parse=int,
            flag="--box",
            help="the detection the explanations explain (--backprop gradcam or eigencam), by its index",
        ),
        Option(
            "box_target",
            None,
            check=_box_or_none,
            expects="(x0, y0, x1, y1, label) in frame pixels or none",
            help="the detection the explanations explain, followed from frame to frame",
        ),
    ),
    rendered=True,
    place=Place(beside="selected", side="tab", share=0.42),
    description="a detector's boxes (detections.png) or a segmenter's classes (segmentation.png) on the frame",
)
VIEWS = (DETECTIONS,)
