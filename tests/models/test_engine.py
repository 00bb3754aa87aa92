import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from livevis.models import CropRect, Engine, ViewOptions, Visualizer
from livevis.models.errors import ChannelOutOfRangeError, InputError, ModelNotFoundError


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (480, 640, CropRect(80, 0, 480, 480)),  # landscape: centre columns
        (640, 480, CropRect(0, 80, 480, 480)),  # portrait: centre rows
        (300, 300, CropRect(0, 0, 300, 300)),  # square: all of it
        (301, 451, CropRect(75, 0, 301, 301)),
    ],
)
def test_crop_is_the_centre_square(alexnet_engine, height, width, expected):
    frame = np.zeros((height, width, 3), np.uint8)
    _, crop = alexnet_engine.preprocess(alexnet_engine.upload(frame))
    assert crop == expected


def test_preprocessing_matches_a_float_reference(alexnet_engine, photos):
    image = photos["coffee"]  # 400 x 600
    x, crop = alexnet_engine.preprocess(alexnet_engine.upload(image))
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32 and x.is_contiguous()
    square = torch.from_numpy(image[crop.y : crop.y + crop.h, crop.x : crop.x + crop.w]).permute(2, 0, 1)[None]
    reference = F.interpolate(square.float(), size=(224, 224), mode="bilinear", antialias=True) / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    reference = (reference - mean) / std
    # the fast path resizes uint8, so values may differ by one grey level
    assert (x - reference).abs().max() <= 1.01 / 255 / 0.224


def test_unknown_model_lists_known_ones():
    with pytest.raises(ModelNotFoundError, match="alexnet"):
        Engine.load("alexnet9", weights="none")


def test_bad_frame_is_an_input_error(alexnet_engine):
    with pytest.raises(InputError, match="HxWx3 uint8"):
        alexnet_engine.upload(np.zeros((10, 10), np.float32))


def test_cuda_asked_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the error is for machines without one")
    from livevis.models.engine import pick_device

    with pytest.raises(InputError, match="no CUDA GPU"):
        pick_device("cuda")


def test_channel_out_of_range(alexnet_engine, photos):
    visualizer = Visualizer(alexnet_engine)
    with pytest.raises(ChannelOutOfRangeError, match="0..255"):
        visualizer.process(photos["chelsea"], ViewOptions(channel=256))


def test_top5_are_sorted_probabilities(alexnet_engine, photos):
    views = Visualizer(alexnet_engine).process(photos["chelsea"])
    probs = [p.probability for p in views.values["top5"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True)
    assert all(0 <= p <= 1 for p in probs)
    assert all(p.label == alexnet_engine.categories[p.index] for p in views.values["top5"])


def _white_square_frame():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[300:360, 420:480] = 255  # inside the crop (80..560), lower right
    return frame, (420, 300, 480, 360)


def test_overlay_peak_lies_over_the_part_of_the_frame_that_drives_the_channel(alexnet_engine):
    frame, (x0, y0, x1, y1) = _white_square_frame()
    conv1 = alexnet_engine.run(frame, ["features.0"]).activations["features.0"]
    blank = alexnet_engine.run(np.zeros_like(frame), ["features.0"]).activations["features.0"]
    # the channel that the square excites most, relative to an empty frame
    channel = int((conv1 - blank).amax(dim=(1, 2)).argmax())
    views = Visualizer(alexnet_engine).process(frame, ViewOptions(layer="conv1", channel=channel))
    px, py = views.values["peak"].frame_xy
    # conv1's receptive field is 11 input pixels = 11 * 480 / 224 frame pixels
    margin = 11 * 480 / 224
    assert x0 - margin <= px <= x1 + margin and y0 - margin <= py <= y1 + margin
    # the ring marker is drawn around the peak, in the overlay only
    assert (views.images["overlay"][py - 12 : py + 13, px - 12 : px + 13] == (0, 255, 0)).all(axis=2).any()
    assert views.images["overlay"].shape == frame.shape


def test_views_come_back_as_host_uint8(alexnet_engine, photos):
    image = photos["astronaut"]
    views = Visualizer(alexnet_engine).process(image, with_activations=True)
    for view in (
        views.images["grid"],
        views.images["overlay"],
        views.images["channel_tile"],
        views.images["input_signed"],
    ):
        assert isinstance(view, np.ndarray) and view.dtype == np.uint8 and view.flags.c_contiguous
    assert views.images["grid"].shape == (views.values["grid_layout"].height, views.values["grid_layout"].width, 3)
    assert views.activation.shape == (256, 13, 13) and views.activation.dtype == np.float32
    assert views.network_input.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(views.values["channel_max"], views.activation.reshape(256, -1).max(1), rtol=1e-6)
    np.testing.assert_allclose(
        views.values["channel_mean"], views.activation.reshape(256, -1).mean(1), rtol=1e-5, atol=1e-6
    )


def test_views_can_be_rendered_at_the_size_they_are_shown(alexnet_engine, photos):
    image = photos["coffee"]  # 600 x 400
    options = ViewOptions(views=("selected", "input"), display_size=(300, 300), frame_display_size=(120, 200))
    views = Visualizer(alexnet_engine).process(image, options)
    assert views.images["overlay"].shape == (200, 300, 3)
    assert views.values.get("frame_display").shape == (80, 120, 3)
    assert views.frame.shape == image.shape, "the full frame stays for snapshots"
    full = Visualizer(alexnet_engine).process(image)
    shrunk = cv2.resize(full.images["overlay"], (300, 200), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(views.images["overlay"].astype(int) - shrunk).mean() < 4, "blended small = the full overlay shrunk"
    big = Visualizer(alexnet_engine).process(image, ViewOptions(display_size=(2000, 2000)))
    assert big.images["overlay"].shape == image.shape and big.values.get("frame_display") is None, "never enlarged"


def _assert_same_pictures(ours, theirs) -> None:
    """Every picture of two FrameViews alike: within a level on average, within 8 at the 99th percentile."""
    for name in ("grid", "overlay", "channel_tile", "input_signed"):
        a, b = ours.images[name].astype(int), theirs.images[name].astype(int)
        assert a.shape == b.shape, name
        assert np.abs(a - b).mean() < 1.0 and np.percentile(np.abs(a - b), 99) <= 8, name


@pytest.mark.parametrize(
    "options",
    [
        ViewOptions(channel=7),
        ViewOptions(layer="fc7", channel=3, colormap="inferno", norm="channel", gamma=0.6),
        ViewOptions(layer="conv2", channel=40, overlay_mode="mask", boost=0.5, display_size=(320, 240)),
    ],
    ids=["conv5", "fc7", "conv2-mask"],
)
def test_the_cpu_renderer_draws_what_the_torch_renderer_draws(alexnet_engine, photos, options):
    from livevis.models.render.opencv_renderer import OpenCVRenderer
    from livevis.models.render.torch_renderer import TorchRenderer

    visualizer = Visualizer(alexnet_engine)
    assert isinstance(visualizer.renderer, OpenCVRenderer), "the CPU renders through OpenCV"
    fast = visualizer.process(photos["chelsea"], options)
    visualizer.renderer = TorchRenderer()
    reference = visualizer.process(photos["chelsea"], options)
    _assert_same_pictures(fast, reference)
    np.testing.assert_allclose(fast.values["channel_max"], reference.values["channel_max"], rtol=1e-6)
    assert fast.values["peak"] == reference.values["peak"] and fast.values["top5"] == reference.values["top5"]


def _pipelines_agree(photo: np.ndarray, options: ViewOptions, device: torch.device) -> None:
    """A trained model draws the same views of one photo through the CPU pipeline (OpenCV renderer)
    and through the accelerator pipeline (torch renderer) on `device`."""
    import copy

    from livevis.models.render.torch_renderer import TorchRenderer

    cpu = Engine.load("efficientnet_lite0", device="cpu")  # trained: its top class is no near tie
    accelerator = Visualizer(Engine(cpu.spec, copy.deepcopy(cpu.model), cpu.weights, device))
    accelerator.renderer = TorchRenderer()  # what CUDA and MPS use; on a machine without them, the CPU
    ours, theirs = Visualizer(cpu).process(photo, options), accelerator.process(photo, options)
    _assert_same_pictures(ours, theirs)
    np.testing.assert_allclose(ours.values["channel_max"], theirs.values["channel_max"], rtol=1e-3, atol=1e-3)
    assert ours.values["top5"][0].label == theirs.values["top5"][0].label
    assert ours.values["top5"][0].probability == pytest.approx(theirs.values["top5"][0].probability, abs=1e-3)


@pytest.mark.parametrize(
    "options",
    [
        ViewOptions(channel=7),
        ViewOptions(layer="classifier", channel=3, colormap="inferno", norm="channel", gamma=0.6),
        ViewOptions(layer="blocks.2", channel=5, overlay_mode="mask", boost=0.5, display_size=(320, 240)),
    ],
    ids=["default", "classifier", "blocks.2-mask"],
)
def test_the_gpu_pipeline_draws_what_the_cpu_pipeline_draws(photos, options, monkeypatch):
    """On CUDA where there is a GPU; elsewhere the same torch renderer on the CPU."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # compare drawing, not TF32 rounding
    _pipelines_agree(photos["chelsea"], options, torch.device("cuda" if torch.cuda.is_available() else "cpu"))


def test_a_frame_prepared_ahead_runs_as_the_frame_itself(alexnet_engine, lenet, photos):
    from livevis.models.attribution.backprop import BackwardRequest

    frame = photos["chelsea"]
    direct = alexnet_engine.run(frame, ["features.10"])
    prepared = alexnet_engine.prepare(frame)
    ahead = alexnet_engine.run(prepared, ["features.10"])
    assert ahead.input is prepared.input, "taken as prepared, not prepared again"
    assert ahead.crop == direct.crop and torch.equal(ahead.input, direct.input)
    assert torch.equal(ahead.activations["features.10"], direct.activations["features.10"])
    assert torch.equal(ahead.frame, direct.frame)

    # inference tensors cannot enter a pass with a backward half: prepared again, the same gradient
    request = BackwardRequest("guided", "features.10", channel=7)
    quick = alexnet_engine.prepare(frame, inference=True)
    assert quick.input.is_inference()
    passed = alexnet_engine.run(quick, ["features.10"], backward=request)
    reference = alexnet_engine.run(frame, ["features.10"], backward=request)
    assert passed.input is not quick.input
    assert passed.backward.gradient.abs().sum() > 0
    assert torch.equal(passed.backward.gradient, reference.backward.gradient)

    # prepared for another model (a new one adopted meanwhile): prepared again for this one
    digits = lenet.run(prepared, [])
    assert digits.input.shape == (1, 1, 28, 28) and torch.equal(digits.input, lenet.run(frame, []).input)


def test_the_pipeline_takes_a_prepared_frame_and_reports_its_preprocess(alexnet_engine, photos):
    visualizer = Visualizer(alexnet_engine, ViewOptions(layer="conv5", channel=3))
    frame = photos["coffee"]
    direct = visualizer.process(frame)
    prepared = alexnet_engine.prepare(frame)
    ahead = visualizer.process(prepared)
    assert ahead.frame is frame and ahead.crop == direct.crop
    assert direct.images.keys() == ahead.images.keys()
    for name in direct.images:
        np.testing.assert_array_equal(ahead.images[name], direct.images[name], err_msg=name)
    assert ahead.timings_ms["preprocess"] == prepared.milliseconds > 0
