"""Optimised images: objectives rise, a class's image is seen as that class, runs repeat, cancel, cache."""

import threading

import numpy as np
import pytest
import torch

from livevis.models import Engine
from livevis.models.dream.run import (
    GradientCapture,
    channel,
    classify,
    dream,
    load_cached,
    logit,
    neuron,
    optimise,
    plan,
    read_png,
    save_png,
)
from livevis.models.errors import ChannelOutOfRangeError, LivevisError, OptionError
from livevis.models.layers import PROB, ActivationCapture
from livevis.models.progress import Cancelled


@pytest.fixture(scope="module")
def efficientnet() -> Engine:
    return Engine.load("efficientnet_lite0", device="cpu")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize(("layer", "method", "preset"), [("conv2", "fourier", None), ("fc1", "yosinski", 4)])
def test_the_objective_rises_over_the_steps(lenet, layer, method, preset):
    request = plan(lenet, layer, 3, method=method, steps=48, preset=preset)
    values = dream(lenet, request, use_cache=False).objective[:, 0]
    assert values.shape == (48,)
    assert values[-8:].mean() > values[:8].mean() + 0.5


def test_the_papers_preset_raises_a_logit_of_a_trained_imagenet_model(efficientnet):
    """Preset 3 (decay 1e-4, a 1-pixel blur every 4 steps, lr 100) was tuned for CaffeNet's pixel space, which is
    the space its pixels live in here too (0-255 minus the mean)."""
    request = plan(efficientnet, PROB, 1, method="yosinski", preset=3, steps=24, size=96)
    values = dream(efficientnet, request, use_cache=False).objective[:, 0]
    assert values[-4:].mean() > values[:4].mean() + 10


def test_an_image_made_for_a_class_is_seen_as_that_class(efficientnet, tmp_path):
    volcano = 980
    request = plan(efficientnet, PROB, volcano, steps=32, size=128)
    result = dream(efficientnet, request, use_cache=False)
    assert result.image.shape == (128, 128, 3) and result.image.dtype == np.uint8
    assert result.objective[-1, 0] > result.objective[0, 0] + 20
    # as written: uint8 PNG, read back and preprocessed as the live view does
    top5 = classify(efficientnet, read_png(save_png(tmp_path / "volcano.png", result.image)))
    assert top5[0].index == volcano, top5


def test_the_same_seed_gives_the_same_png(lenet, tmp_path):
    def png(seed: int, method: str, name: str) -> bytes:
        request = plan(lenet, PROB, 4, method=method, steps=24, seed=seed)
        return save_png(tmp_path / f"{name}.png", dream(lenet, request, use_cache=False).image).read_bytes()

    assert png(5, "fourier", "a") == png(5, "fourier", "b")
    assert png(5, "fourier", "c") != png(6, "fourier", "d")
    assert png(5, "yosinski", "e") == png(5, "yosinski", "f")


@pytest.mark.parametrize("stop_at", [1, 5])
def test_cancel_stops_within_a_step(lenet, stop_at):
    steps_run = []
    hook = lenet.model.conv1.register_forward_hook(
        lambda *_: steps_run.append(1) if torch.is_grad_enabled() else None  # the dry run has no gradients
    )
    try:
        with pytest.raises(Cancelled):
            optimise(lenet, channel("conv2", 0), steps=100, progress=lambda _what, done, _total: done < stop_at)
    finally:
        hook.remove()
    assert len(steps_run) in (stop_at, stop_at + 1)
    assert all(p.requires_grad for p in lenet.model.parameters()), "the weights were left frozen"


def test_previews_come_every_few_steps_as_images(lenet):
    previews = []
    optimise(lenet, logit(2), steps=20, preview_every=5, on_preview=lambda step, image: previews.append((step, image)))
    assert [step for step, _ in previews] == [5, 10, 15]
    assert all(image.shape == (28, 28, 3) and image.dtype == np.uint8 for _, image in previews)


def test_the_cache_returns_the_stored_image_without_optimising(lenet, monkeypatch):
    request = plan(lenet, "conv2", [1, 2], steps=16, seed=7)
    assert load_cached(lenet, request) is None
    made = dream(lenet, request)
    assert not made.cached

    def no_optimising(*_args, **_kwargs):
        raise AssertionError("optimised again")

    monkeypatch.setattr("livevis.models.dream.run.optimise", no_optimising)
    again = dream(lenet, request)
    assert again.cached
    np.testing.assert_array_equal(again.images, made.images)
    np.testing.assert_array_equal(again.objective, made.objective)
    # each channel is cached on its own: one of them alone is found too
    alone = dream(lenet, plan(lenet, "conv2", 2, steps=16, seed=7))
    np.testing.assert_array_equal(alone.image, made.images[1])
    assert load_cached(lenet, plan(lenet, "conv2", [1, 2], steps=16, seed=8)) is None


def test_a_batch_optimises_each_channel_for_itself(lenet):
    request = plan(lenet, "conv2", [0, 1, 2, 3], objective="neuron", steps=32)
    result = dream(lenet, request, use_cache=False, batch_size=3)
    assert result.images.shape == (4, 28, 28, 3)
    assert result.objective.shape == (32, 4)
    assert (result.objective[-4:].mean(0) > result.objective[:4].mean(0)).all()
    assert len({image.tobytes() for image in result.images}) == 4


def test_objectives_compose_and_read_the_right_units(lenet):
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with ActivationCapture(lenet.model, ["conv2"]) as capture:
        logits = lenet.model(x).detach()
    acts = {"conv2": capture.activations["conv2"], PROB: logits}
    conv2 = acts["conv2"]
    combined = 2 * channel("conv2", 3) - neuron("conv2", 1) + logit(4) * 0.5 - 1
    expected = 2 * conv2[:, 3].mean((1, 2)) - conv2[:, 1, 5, 5] + 0.5 * logits[:, 4] - 1
    torch.testing.assert_close(combined(acts), expected)
    assert combined.paths == {"conv2", PROB}
    per_image = channel("conv2", [3, 7])(acts)  # image i maximises its own channel
    torch.testing.assert_close(per_image, torch.stack([conv2[0, 3].mean(), conv2[1, 7].mean()]))


def test_a_module_called_twice_is_captured_at_its_last_call(resnet18_engine):
    """ResNet's blocks call one ReLU twice; the layer list and the live view show the second call. The capture
    reads the ReLU's input (before the clip): clipped, it is the output the live view shows."""
    model, path = resnet18_engine.model, "layer1.0.relu"
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with ActivationCapture(model, [path]) as reference, torch.no_grad():
        model(x)
    with GradientCapture(model, frozenset({path})) as capture, torch.no_grad():
        captured = capture.run(x)[path]
    assert captured.min() < 0
    torch.testing.assert_close(captured.clamp(min=0), reference.activations[path])


def test_the_live_view_on_another_thread_passes_the_hooks_untouched(lenet):
    """The app runs the live view and an optimisation through one model at once."""
    x = torch.zeros(1, 1, 28, 28)
    outputs = []
    with GradientCapture(lenet.model, frozenset({"conv1"})) as capture:
        capture.run(x)  # stops after conv1 on this thread
        thread = threading.Thread(target=lambda: outputs.append(lenet.model(x)))
        thread.start()
        thread.join()
    assert outputs and outputs[0].shape == (1, 10)


def test_two_optimisations_at_once_leave_the_shared_model_as_it_was(lenet):
    """The unit pane and the concepts pane optimise on their own threads through one model: the second starts
    while the first runs and goes on after the first has ended. Neither may leave the weights asking for
    gradients they did not ask for before, nor holding gradients."""
    parameters = dict(lenet.model.named_parameters())
    before = {name: p.requires_grad for name, p in parameters.items()}
    assert all(p.grad is None for p in parameters.values())
    first_running, second_running, first_done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first_progress(_what: str, done: int, _total: int) -> bool:
        if done == 1:
            first_running.set()
            assert second_running.wait(60), "the second optimisation did not start"
        return True

    def second_progress(_what: str, done: int, _total: int) -> bool:
        if done == 1:
            second_running.set()
            assert first_done.wait(60), "the first optimisation did not end"
        return True

    def first() -> None:
        try:
            optimise(lenet, channel("conv2", 0), steps=3, progress=first_progress)
        except BaseException as exc:  # handed to the test
            errors.append(exc)
        finally:
            first_done.set()

    def second() -> None:
        assert first_running.wait(60), "the first optimisation did not start"
        try:
            optimise(lenet, logit(3), steps=4, progress=second_progress)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and not any(thread.is_alive() for thread in threads)
    assert {name: p.requires_grad for name, p in parameters.items()} == before
    assert [name for name, p in parameters.items() if p.grad is not None] == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"layer": "conv2", "channels": 16}, ChannelOutOfRangeError),
        ({"layer": "fc1", "channels": 0, "objective": "neuron"}, OptionError),
        ({"layer": "conv2", "channels": 0, "steps": 0}, OptionError),
        ({"layer": "conv2", "channels": 0, "method": "deepdream"}, OptionError),
        ({"layer": "conv2", "channels": 0, "method": "yosinski", "preset": 5}, OptionError),
        ({"layer": "conv2", "channels": 0, "method": "yosinski", "preset": 0}, OptionError),
        ({"layer": "input", "channels": 0}, OptionError),
    ],
)
def test_bad_requests_are_errors_a_user_can_act_on(lenet, kwargs, error):
    with pytest.raises(error) as raised:
        plan(lenet, **kwargs)
    assert isinstance(raised.value, LivevisError)
    assert "\n" not in str(raised.value)


def test_an_objective_on_a_clipping_activation_reads_its_input_so_a_grey_start_moves(efficientnet, photos):
    """EfficientNet-Lite0's default layer is a ReLU6: the objective reads its input (the output clipped to
    0..6 is what the live view shows), so that from a grey image every channel has a gradient to follow."""
    layer = efficientnet.layer().path
    x = efficientnet.run(photos["chelsea"], []).input
    with GradientCapture(efficientnet.model, frozenset({layer})) as capture:
        kept = capture.run(x)[layer].detach()
    with ActivationCapture(efficientnet.model, [layer]) as shown:
        efficientnet.model(x)
    assert torch.allclose(kept.clamp(0, 6), shown.activations[layer]) and kept.min() < 0, "before the clip"
    grey = torch.zeros(1, 3, 128, 128, requires_grad=True)
    with GradientCapture(efficientnet.model, frozenset({layer})) as capture:
        for unit in range(0, efficientnet.layer().channels, 48):
            (gradient,) = torch.autograd.grad(channel(layer, unit)(capture.run(grey)).sum(), grey)
            assert gradient.abs().max() > 0, unit
    values = dream(efficientnet, plan(efficientnet, layer, 274, steps=12, size=96), use_cache=False).objective[:, 0]
    assert values[-3:].mean() > values[:3].mean() + 0.5
