"""Unit analysis against independent references.

The ReLU rules are checked against a hand-written autograd Function put into a deep copy of each model
by replacing its modules (or, for functional ReLUs, by patching torch.nn.functional.relu), which is
not how models/backprop.py does it (a torch function mode, nothing edited). The reference gradient
stops the forward pass at the layer, so no later in-place op can touch the layer's output.
"""

from __future__ import annotations

import copy
import threading
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from livevis.models.attribution import (
    MODES,
    VIEWS,
    grad_cam,
    gradient_view,
    map_cell,
    rank_units_at,
    relu_backward_rule,
    render_gradient,
    unit_gradient,
)
from livevis.models.engine import CropRect
from livevis.models.errors import ChannelOutOfRangeError, LayerNotFoundError, LivevisError, OptionError
from livevis.models.layers import ActivationCapture
from livevis.models.render.base import LEVELS, cell_centre, colormap_table

MIDDLE = (LEVELS - 1) // 2
IMPORTED_RELU = F.relu  # as `from torch.nn.functional import relu` keeps it: patching F would miss it


# ---------------------------------------------------------------------------------------------------------------------
# The independent reference


class ReferenceRelu(torch.autograd.Function):
    """guided: clamp(g, 0) * (x in the pass band); deconv: clamp(g, 0). Saves the input, always out of place."""

    @staticmethod
    def forward(ctx, x, mode, upper):
        ctx.save_for_backward(x)
        ctx.mode, ctx.upper = mode, upper
        return x.clamp(min=0) if upper is None else x.clamp(0, upper)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.mode == "deconv":
            return torch.clamp(g, min=0), None, None
        passes = (x > 0) if ctx.upper is None else (x > 0) & (x < ctx.upper)
        return torch.clamp(g, min=0) * passes, None, None


class ReferenceReluModule(nn.Module):
    def __init__(self, mode: str, upper: float | None):
        super().__init__()
        self.mode, self.upper = mode, upper

    def forward(self, x):
        return ReferenceRelu.apply(x, self.mode, self.upper)


@lru_cache(maxsize=4)
def reference_model(model: nn.Module, mode: str) -> nn.Module:
    """A deep copy whose nn.ReLU / nn.ReLU6 modules are replaced by the reference (kept for the next layer);
    `grad` is plain autograd on the model itself."""
    if mode == "grad":
        return model
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(parent, name, ReferenceReluModule(mode, 6.0))
            elif isinstance(child, nn.ReLU):
                setattr(parent, name, ReferenceReluModule(mode, None))
    return model


@contextmanager
def out_of_place_relus(model: nn.Module):
    """The model's ReLU modules made out of place for a while, so a layer's output survives the forward."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace]
    for relu in relus:
        relu.inplace = False
    try:
        yield model
    finally:
        for relu in relus:
            relu.inplace = True


class StopForward(Exception):
    pass


def reference_unit_gradient(model: nn.Module, x: torch.Tensor, layer_path: str, channel: int) -> torch.Tensor:
    """d/dx of 0.5 * sum over space of the channel's squares, by plain autograd, the forward stopped at the layer."""
    kept = {}

    def stop(_module, _inputs, output):
        kept["out"] = output
        raise StopForward

    leaf = x.detach().clone().requires_grad_(True)
    handle = model.get_submodule(layer_path).register_forward_hook(stop)
    try:
        with pytest.raises(StopForward):
            model(leaf)
    finally:
        handle.remove()
    out = kept["out"]
    objective = 0.5 * (out[:, channel] ** 2).sum()
    (grad,) = torch.autograd.grad(objective, leaf)
    return grad


def assert_same_gradient(actual: torch.Tensor, expected: torch.Tensor) -> None:
    scale = expected.abs().max()
    assert scale > 0, "the reference gradient is all zero: the test would prove nothing"
    assert torch.allclose(actual, expected, rtol=1e-4, atol=1e-5 * float(scale)), (
        f"max difference {float((actual - expected).abs().max()):.3g} of {float(scale):.3g}"
    )


def check_modes_against_reference(model, x, layer_path, channel, modes=MODES):
    results = {}
    for mode in modes:
        result = unit_gradient(model, x, layer_path, channel, mode)
        assert_same_gradient(
            result.gradient, reference_unit_gradient(reference_model(model, mode), x, layer_path, channel)
        )
        results[mode] = result.gradient
    if len(results) == 3:  # the rules must make a difference, or the comparison above is empty
        assert not torch.allclose(results["grad"], results["guided"])
        assert not torch.allclose(results["deconv"], results["guided"])
    return results


def photo_input(engine, photo: np.ndarray) -> torch.Tensor:
    x, _ = engine.preprocess(engine.upload(np.array(photo)))  # a writable copy: scikit-image's are read-only
    return x


# ---------------------------------------------------------------------------------------------------------------------
# Rules against the reference, per model


@pytest.mark.parametrize("layer", ["features.3", "features.10", "classifier.4"])
def test_alexnet_inplace_relus_match_the_reference(alexnet_engine, photos, layer):
    x = photo_input(alexnet_engine, photos["chelsea"])[:, :, ::2, ::2]  # 112 px: the rules do not care
    check_modes_against_reference(alexnet_engine.model, x, layer, 7)


@pytest.mark.parametrize("layer", ["layer1.1.bn2", "layer3.0"])
def test_resnet18_shared_inplace_relus_match_the_reference(resnet18_engine, photos, layer):
    x = photo_input(resnet18_engine, photos["coffee"])[:, :, ::2, ::2]  # 112 px: the rules do not care
    check_modes_against_reference(resnet18_engine.model, x, layer, 3)


def test_efficientnet_lite0_relu6_matches_the_reference(lite0, photos):
    """Trained weights, a real photo; ReLU6 modules inside timm's BatchNormAct2d."""
    x = F.interpolate(photo_input(lite0, photos["chelsea"]), size=160, mode="bilinear", antialias=True)
    check_modes_against_reference(lite0.model, x, "blocks.5.0", 11, ("guided", "deconv"))


def test_lenet_trained_matches_the_reference_and_counts_four(lenet, photos):
    x = photo_input(lenet, photos["astronaut"])
    for layer, channel in (("conv2", 5), ("fc2", 9)):
        check_modes_against_reference(lenet.model, x, layer, channel)
    assert unit_gradient(lenet.model, x, "conv1", 0, "guided").rule_count == 4


@pytest.fixture(scope="module")
def mobilevit():
    """timm's MobileViT-v2 applies F.relu in its linear attention's forward (and SiLU modules elsewhere)."""
    import timm

    torch.manual_seed(0)
    return timm.create_model("mobilevitv2_050", pretrained=False).eval()


def test_timm_functional_relu_matches_the_reference(mobilevit, monkeypatch):
    from timm.models.mobilevit import LinearSelfAttention

    torch.manual_seed(1)
    x = torch.randn(1, 3, 64, 64)
    calls = []
    handles = [
        module.register_forward_hook(lambda *_: calls.append(1))
        for module in mobilevit.modules()
        if isinstance(module, LinearSelfAttention)
    ]
    try:
        results = {mode: unit_gradient(mobilevit, x, "stages.4", 5, mode) for mode in MODES}
    finally:
        for handle in handles:
            handle.remove()
    assert len(calls) == 3 * 9, "the model has 9 linear-attention layers"
    assert all(result.rule_count == 9 for result in results.values()), "one F.relu per attention layer"

    expected = {"grad": reference_unit_gradient(mobilevit, x, "stages.4", 5)}
    plain_relu = F.relu
    for mode in ("guided", "deconv"):
        # the reference rule through the module attribute the model's code looks up
        monkeypatch.setattr(
            torch.nn.functional, "relu", lambda t, inplace=False, m=mode: ReferenceRelu.apply(t, m, None)
        )
        expected[mode] = reference_unit_gradient(mobilevit, x, "stages.4", 5)
        monkeypatch.setattr(torch.nn.functional, "relu", plain_relu)
    for mode in MODES:
        assert_same_gradient(results[mode].gradient, expected[mode])
    assert not torch.allclose(results["grad"].gradient, results["guided"].gradient), "F.relu was not caught"


def test_grad_mode_is_plain_autograd(alexnet_engine, photos):
    x = photo_input(alexnet_engine, photos["china"])
    result = unit_gradient(alexnet_engine.model, x, "features.10", 12, "grad")
    assert_same_gradient(result.gradient, reference_unit_gradient(alexnet_engine.model, x, "features.10", 12))
    assert result.rule_count == 7


def test_captum_agrees_where_installed(alexnet_engine, photos):
    """An outside reference as well; the hand-written one above runs whether or not Captum is here."""
    import captum.attr as attr

    model = alexnet_engine.model
    x = photo_input(alexnet_engine, photos["chelsea"])[:, :, ::2, ::2]
    selector = lambda out: 0.5 * (out[:, 7] ** 2).sum(dim=(1, 2))  # noqa: E731
    for mode, method in (("guided", attr.NeuronGuidedBackprop), ("deconv", attr.NeuronDeconvolution)):
        expected = method(model, model.features[10]).attribute(x.clone(), selector)
        assert_same_gradient(unit_gradient(model, x, "features.10", 7, mode).gradient, expected)


# ---------------------------------------------------------------------------------------------------------------------
# The context itself


@pytest.mark.parametrize(
    ("name", "apply", "clipped"),
    [
        ("F.relu", lambda t: F.relu(t), False),
        ("torch.relu", lambda t: torch.relu(t), False),
        ("Tensor.relu", lambda t: t.relu(), False),
        ("F.relu_", lambda t: F.relu_(t), False),
        ("torch.relu_", lambda t: torch.relu_(t), False),
        ("Tensor.relu_", lambda t: t.relu_(), False),
        ("F.relu inplace", lambda t: F.relu(t, inplace=True), False),
        ("nn.ReLU inplace", lambda t: nn.ReLU(inplace=True)(t), False),
        ("nn.ReLU6", lambda t: nn.ReLU6()(t), True),
        ("F.relu6", lambda t: F.relu6(t), True),
        ("F.relu6 inplace", lambda t: F.relu6(t, inplace=True), True),
        ("F.hardtanh(0, 6)", lambda t: F.hardtanh(t, 0.0, 6.0), True),
        ("F.hardtanh_(0, 6)", lambda t: F.hardtanh_(t, min_val=0.0, max_val=6.0), True),
        ("relu imported before", lambda t: IMPORTED_RELU(t), False),
        ("torch.relu(input=)", lambda t: torch.relu(input=t), False),
    ],
)
def test_every_relu_form_gets_the_rule(name, apply, clipped):
    x = torch.tensor([-1.0, 2.0, 7.0, 0.0])
    upstream = torch.tensor([3.0, -4.0, 5.0, 6.0])
    expected = {
        "grad": [0.0, -4.0, 0.0 if clipped else 5.0, 0.0],
        "deconv": [3.0, 0.0, 5.0, 6.0],
        "guided": [0.0, 0.0, 0.0 if clipped else 5.0, 0.0],
    }
    forward = x.clamp(0, 6) if clipped else x.clamp(min=0)
    for mode in MODES:
        leaf = x.clone().requires_grad_(True)
        with relu_backward_rule(nn.Identity(), mode) as rule:
            inner = leaf * 1.0  # in-place forms need a non-leaf
            out = apply(inner)
        assert rule.count == 1, name
        assert torch.equal(out, forward), name
        if "_" in name or "inplace" in name:
            assert torch.equal(inner, forward), f"{name} must still act in place"
        out.backward(upstream)
        assert leaf.grad.tolist() == expected[mode], f"{name} {mode}"


def test_the_rule_holds_on_its_own_thread_only():
    leaf = torch.tensor([-1.0, 2.0], requires_grad=True)
    upstream = torch.tensor([3.0, -4.0])
    results = []

    def elsewhere():
        (grad,) = torch.autograd.grad(F.relu(leaf * 1.0), leaf, upstream)
        results.append(grad.tolist())

    with relu_backward_rule(nn.Identity(), "deconv") as rule:
        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
        (here,) = torch.autograd.grad(F.relu(leaf * 1.0), leaf, upstream)
    assert results == [[0.0, -4.0]], "another thread keeps the ordinary rule"
    assert here.tolist() == [3.0, 0.0] and rule.count == 1


def test_other_nonlinearities_keep_their_gradient():
    x = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    upstream = torch.tensor([-1.0, -2.0, 3.0])
    for fn in (F.silu, F.gelu, torch.sigmoid, lambda t: F.hardtanh(t, -1.0, 1.0), F.leaky_relu):
        (expected,) = torch.autograd.grad(fn(x), x, upstream)
        with relu_backward_rule(nn.Identity(), "guided") as rule:
            (actual,) = torch.autograd.grad(fn(x), x, upstream)
        assert rule.count == 0
        assert torch.equal(actual, expected)


@pytest.mark.parametrize("engine_name", ["alexnet_engine", "resnet18_engine"])
def test_forward_values_identical_with_the_rule(request, photos, engine_name):
    engine = request.getfixturevalue(engine_name)
    model = engine.model
    x = photo_input(engine, photos["astronaut"])[:, :, ::3, ::3]
    paths = [layer.path for layer in engine.layers[1:-1]]
    with torch.no_grad(), ActivationCapture(model, paths) as plain:
        plain_logits = model(x)
    for mode in MODES:
        leaf = x.clone().requires_grad_(True)
        with relu_backward_rule(model, mode), ActivationCapture(model, paths) as ruled:
            ruled_logits = model(leaf)
        assert torch.equal(ruled_logits, plain_logits), mode
        for path in paths:
            assert torch.equal(ruled.activations[path], plain.activations[path]), f"{mode} {path}"


def test_relu_counts(alexnet_engine, resnet18_engine, lite0):
    """AlexNet: 5 conv + 2 fc ReLUs. ResNet18: the stem's ReLU and, in each of 8 BasicBlocks, one ReLU
    module called twice: 17. EfficientNet-Lite0: 33 ReLU6 modules, each called once."""
    x = torch.zeros(1, 3, 64, 64)
    for engine, count in ((alexnet_engine, 7), (resnet18_engine, 17), (lite0, 33)):
        with torch.no_grad(), relu_backward_rule(engine.model, "guided") as rule:
            engine.model(x)
        assert rule.count == count, engine.name
    assert sum(isinstance(m, nn.ReLU6) for m in lite0.model.modules()) == 33
    assert sum(isinstance(m, nn.ReLU) for m in resnet18_engine.model.modules()) == 9


def test_model_and_functions_restored_also_after_an_error(alexnet_engine):
    model = alexnet_engine.model
    before = {name: (type(m), dict(m.__dict__)) for name, m in model.named_modules()}
    functions = (F.relu, torch.relu, F.relu6, F.hardtanh, torch.Tensor.relu)
    with pytest.raises(RuntimeError, match="inside"):
        with relu_backward_rule(model, "deconv") as rule:
            model(torch.zeros(1, 3, 64, 64))
            raise RuntimeError("inside")
    assert rule.count == 7
    assert (F.relu, torch.relu, F.relu6, F.hardtanh, torch.Tensor.relu) == functions
    after = {name: (type(m), dict(m.__dict__)) for name, m in model.named_modules()}
    assert after.keys() == before.keys()
    for name, (kind, attributes) in before.items():
        assert after[name][0] is kind
        assert after[name][1].keys() == attributes.keys(), name
        assert not model.get_submodule(name)._forward_hooks if name else True
    # the ordinary rule is back: a negative gradient passes where the input was positive
    leaf = torch.tensor([-1.0, 2.0], requires_grad=True)
    F.relu(leaf * 1.0).backward(torch.tensor([3.0, -4.0]))
    assert leaf.grad.tolist() == [0.0, -4.0]
    assert rule.count == 7, "the rule no longer counts"


# ---------------------------------------------------------------------------------------------------------------------
# unit_gradient details


def test_batch_samples_are_independent_and_input_untouched(alexnet_engine, photos):
    model = alexnet_engine.model
    x = torch.cat([photo_input(alexnet_engine, photos[name]) for name in ("chelsea", "coffee")])
    original = x.clone()
    batch = unit_gradient(model, x, "features.8", 4, "guided")
    assert torch.equal(x, original) and not x.requires_grad
    for i in range(2):
        single = unit_gradient(model, x[i : i + 1], "features.8", 4, "guided")
        assert torch.allclose(batch.gradient[i], single.gradient[0], rtol=1e-4, atol=1e-7)
    assert batch.gradient.shape == x.shape and batch.activation.shape == (2, 256, 13, 13)
    assert batch.logits.shape == (2, 1000) and not batch.gradient.requires_grad


def test_single_unit_seed_is_the_units_plain_gradient(alexnet_engine, photos):
    model = alexnet_engine.model
    x = photo_input(alexnet_engine, photos["coffee"])
    result = unit_gradient(model, x, "features.3", 10, "grad", at=(5, 9))
    kept = {}
    handle = model.features[3].register_forward_hook(lambda _m, _i, out: kept.setdefault("out", out.clone()))
    leaf = x.clone().requires_grad_(True)
    try:
        model.features[:4](leaf)
    finally:
        handle.remove()
    (expected,) = torch.autograd.grad(kept["out"][0, 10, 5, 9], leaf)
    assert_same_gradient(result.gradient, expected)
    # one conv2 unit sees a 51 x 51 patch: the gradient is zero far from it
    rows, cols = torch.nonzero(result.gradient[0].abs().sum(0), as_tuple=True)
    assert rows.max() - rows.min() < 60 and cols.max() - cols.min() < 60


def test_inference_tensor_from_the_engine_works(alexnet_engine, photos):
    run = alexnet_engine.run(photos["chelsea"])
    assert run.input.is_inference()
    result = unit_gradient(alexnet_engine.model, run.input, "features.10", 1, "deconv")
    assert torch.isfinite(result.gradient).all() and result.gradient.abs().max() > 0
    assert torch.allclose(result.logits, run.logits, atol=1e-5)


def test_all_zero_channel_gives_zero_gradient_not_nan():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).eval()
    with torch.no_grad():
        model[0].weight[0].zero_()
        model[0].bias[0] = -1.0
    x = torch.randn(1, 3, 16, 16)
    for mode in MODES:
        result = unit_gradient(model, x, "1", 0, mode)
        assert torch.equal(result.gradient, torch.zeros_like(x)), mode
        for view in VIEWS:
            picture = render_gradient(gradient_view(result.gradient[0], view), view)
            assert picture.dtype == torch.uint8 and picture.shape == (16, 16, 3)
            assert (picture == picture[0, 0]).all(), f"{view}: a zero gradient is one flat colour"


# ---------------------------------------------------------------------------------------------------------------------
# The pass's shortcuts: a plain layer crossed through one filter, no graph past the layer


def _layers_with_groups() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 6, 3, stride=2, padding=1, groups=2),
        nn.ReLU(inplace=True),
        nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=6, bias=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 5),
        nn.ReLU(),
        nn.Linear(5, 3),
    ).eval()


def test_one_channel_alone_matches_its_layer_and_refuses_what_it_cannot_vouch_for():
    from timm.layers import Conv2dSame

    from livevis.models.attribution.backprop import _channel_alone

    model = _layers_with_groups()
    x = torch.randn(2, 3, 20, 20)
    inputs = {"2": model[:2](x), "4": model[:4](x), "8": model[:8](x)}
    for path, layer_input in inputs.items():
        layer = model.get_submodule(path)
        output = layer(layer_input)
        for channel in (0, output.shape[1] // 2, output.shape[1] - 1):
            alone = _channel_alone(layer, (layer_input,), output, channel)
            assert alone is not None and alone.shape == output[:, :1].shape, (path, channel)
            assert torch.allclose(alone, output[:, channel : channel + 1], rtol=1e-5, atol=1e-6), (path, channel)
    layer_input, layer = inputs["2"], model[2]
    output = layer(layer_input)
    assert _channel_alone(layer, (layer_input,), output * 2, 1) is None, "an output a hook edited"
    assert _channel_alone(layer, (layer_input,), output, 6) is None, "a channel the layer lacks"
    same = Conv2dSame(8, 6, 3, stride=2, groups=2)
    assert _channel_alone(same, (layer_input,), same(layer_input), 1) is None, "a subclass computes otherwise"
    reflect = nn.Conv2d(8, 4, 3, padding=1, padding_mode="reflect")
    assert _channel_alone(reflect, (layer_input,), reflect(layer_input), 1) is None


@pytest.mark.parametrize(("layer", "channel"), [("2", 4), ("4", 5), ("8", 2)])
def test_grouped_dilated_and_linear_layers_match_the_reference(layer, channel):
    model = _layers_with_groups()
    x = torch.randn(1, 3, 24, 24)
    check_modes_against_reference(model, x, layer, channel)


def test_a_hook_that_edits_the_layer_output_is_honoured(alexnet_engine, photos):
    model = alexnet_engine.model
    x = photo_input(alexnet_engine, photos["coffee"])[:, :, ::2, ::2]
    handle = model.features[10].register_forward_hook(lambda _m, _i, out: out * 2)
    try:
        for mode in MODES:
            expected = reference_unit_gradient(reference_model(model, mode), x, "features.10", 7)
            assert_same_gradient(unit_gradient(model, x, "features.10", 7, mode).gradient, expected)
    finally:
        handle.remove()
    plain = unit_gradient(model, x, "features.10", 7, "grad").gradient
    edited = reference_unit_gradient(model, x, "features.10", 7)
    assert_same_gradient(edited, plain), "with the hook gone, the plain gradient again"


class _CalledTwice(nn.Module):
    """One convolution applied twice (shared weights): a unit of it is its last call's, as the views show."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))

    def forward(self, x):
        return self.head(self.conv(F.relu(self.conv(x))))


def test_a_layer_called_twice_is_seeded_at_its_last_call():
    model = _CalledTwice().eval()
    x = torch.randn(1, 3, 16, 16)
    calls = []
    handle = model.conv.register_forward_hook(lambda _m, _i, out: calls.append(out))
    leaf = x.clone().requires_grad_(True)
    try:
        model(leaf)
    finally:
        handle.remove()
    last = calls[-1][:, 1]
    (expected,) = torch.autograd.grad(0.5 * (last**2).sum(), leaf)
    for _ in range(2):  # the first pass finds the layer repeats and runs again; the second knows it
        result = unit_gradient(model, x, "conv", 1, "grad")
        assert_same_gradient(result.gradient, expected)
        assert torch.allclose(result.activation, calls[-1].detach())


def test_nothing_past_the_layer_records_a_graph_and_grad_mode_comes_back(alexnet_engine, photos):
    from livevis.models.attribution.backprop import BackwardRequest, forward_backward

    model = alexnet_engine.model
    x = photo_input(alexnet_engine, photos["chelsea"])
    seen = {}

    def note_grad_mode(path):
        def hook(_module, _inputs, _output):
            seen[path] = torch.is_grad_enabled()

        return hook

    handles = [
        model.get_submodule(path).register_forward_hook(note_grad_mode(path)) for path in ("features.3", "classifier.1")
    ]
    try:
        for grad_mode in (True, False):
            seen.clear()
            with torch.set_grad_enabled(grad_mode):
                passed = forward_backward(model, x, ["features.10"], BackwardRequest("guided", "features.10", 3))
                assert torch.is_grad_enabled() is grad_mode
            assert seen == {"features.3": True, "classifier.1": False}
            assert passed.gradient.abs().max() > 0
        seen.clear()
        forward_backward(model, x, [], BackwardRequest("gradcam", "features.10"))
        assert seen == {"features.3": True, "classifier.1": True}, "Grad-CAM needs the graph from the class down"
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------------------------------
# Grad-CAM


def reference_grad_cam(model, x, layer_path, class_index=None):
    """Grad-CAM's formula by plain autograd, the model's ReLUs made out of place meanwhile."""
    kept = {}
    handle = model.get_submodule(layer_path).register_forward_hook(lambda _m, _i, out: kept.setdefault("a", out))
    try:
        with out_of_place_relus(model):
            logits = model(x.clone())
    finally:
        handle.remove()
    a = kept["a"]
    k = logits.argmax(1) if class_index is None else torch.as_tensor(class_index).expand(len(x))
    (grad,) = torch.autograd.grad(logits[torch.arange(len(x)), k].sum(), a)
    alpha = grad.mean(dim=(2, 3), keepdim=True)
    return F.relu((alpha * a).sum(1)).detach(), k


def kept_shape(model, x, layer_path) -> tuple[int, ...]:
    with torch.no_grad(), ActivationCapture(model, [layer_path]) as capture:
        model(x)
    return tuple(capture.activations[layer_path].shape)


@pytest.mark.parametrize(("engine_name", "layer"), [("alexnet_engine", "features.10"), ("resnet18_engine", "layer4")])
def test_grad_cam_formula(request, photos, engine_name, layer):
    engine = request.getfixturevalue(engine_name)
    x = torch.cat([photo_input(engine, photos[name]) for name in ("chelsea", "china")])[:, :, ::2, ::2]
    result = grad_cam(engine.model, x, layer)
    expected, k = reference_grad_cam(engine.model, x, layer)
    assert torch.equal(result.class_index, k) and torch.equal(result.class_index, result.logits.argmax(1))
    assert result.cam.shape == (2, *kept_shape(engine.model, x, layer)[2:])
    assert_same_gradient(result.cam, expected)
    given = grad_cam(engine.model, x, layer, class_index=np.int64(281))
    expected_281, _ = reference_grad_cam(engine.model, x, layer, 281)
    assert given.class_index.tolist() == [281, 281]
    per_sample = grad_cam(engine.model, x, layer, class_index=torch.tensor([281, 5]))
    assert per_sample.class_index.tolist() == [281, 5] and torch.equal(per_sample.cam[0], given.cam[0])
    assert torch.allclose(given.cam, expected_281, rtol=1e-4, atol=1e-5 * float(expected_281.abs().max()))


def test_grad_cam_matches_captum_where_installed(resnet18_engine, photos):
    import captum.attr as attr

    model = resnet18_engine.model
    x = photo_input(resnet18_engine, photos["coffee"])[:, :, ::2, ::2]
    result = grad_cam(model, x, "layer4")
    expected = attr.LayerGradCam(model, model.layer4).attribute(
        x, target=int(result.class_index[0]), relu_attributions=True
    )
    assert_same_gradient(result.cam, expected[:, 0].detach())


# ---------------------------------------------------------------------------------------------------------------------
# Views


@pytest.fixture(scope="module")
def gradient() -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.randn(3, 48, 40, generator=generator) * torch.linspace(0.1, 2.0, 40)


def test_views_against_numpy(gradient):
    g = gradient.numpy().astype(np.float64)
    assert torch.equal(gradient_view(gradient, "raw"), gradient)
    np.testing.assert_allclose(gradient_view(gradient, "gray").numpy(), g.mean(0), rtol=1e-5, atol=1e-6)
    norm = np.linalg.norm(g, axis=0)
    np.testing.assert_allclose(gradient_view(gradient, "norm").numpy(), norm, rtol=1e-5, atol=1e-6)
    blurred = gradient_view(gradient, "normblur").numpy()
    # reflect padding d c b | a b c d: scipy's mode="mirror", OpenCV's default BORDER_REFLECT_101
    from scipy.ndimage import gaussian_filter

    np.testing.assert_allclose(blurred, gaussian_filter(norm, 4.0, mode="mirror", truncate=4.0), rtol=1e-4, atol=1e-5)
    import cv2

    np.testing.assert_allclose(blurred, cv2.GaussianBlur(norm.astype(np.float32), (0, 0), 4.0), rtol=1e-4, atol=1e-5)
    batch = gradient_view(torch.stack([gradient, -gradient]), "normblur")
    assert torch.allclose(batch[0], batch[1]) and torch.allclose(batch[0], torch.from_numpy(blurred))


def test_render_raw_rgb_is_symmetric_about_mid_grey(gradient):
    picture = render_gradient(gradient_view(gradient, "raw"), "raw")
    assert picture.shape == (48, 40, 3) and picture.dtype == torch.uint8
    g = gradient.permute(1, 2, 0).numpy().astype(np.float64)
    expected = np.clip(np.rint(g / np.abs(g).max() * 127.5 + 127.5), 0, 255)
    assert np.abs(picture.numpy().astype(int) - expected).max() <= 1
    assert picture.max() == 255 or picture.min() == 0
    assert render_gradient(torch.zeros(3, 4, 4), "raw").unique().tolist() == [128]


def test_render_signed_and_sequential_use_the_render_tables(gradient):
    gray = gradient_view(gradient, "gray")
    picture = render_gradient(gray, "gray").numpy()
    signed = colormap_table("signed")
    g = gray.numpy().astype(np.float64)
    levels = np.rint(g / np.abs(g).max() * MIDDLE + MIDDLE).astype(int)
    matches = (picture == signed[levels]).all(-1).mean()
    assert matches > 0.999
    assert (picture[np.abs(g) < 1e-9 * np.abs(g).max()] == 255).all() if (np.abs(g) < 1e-9).any() else True
    zero = render_gradient(torch.zeros(5, 5), "gray")
    assert (zero == torch.tensor(signed[MIDDLE])).all() and signed[MIDDLE].tolist() == [255, 255, 255]
    one_channel = render_gradient(gray[None], "raw")
    assert torch.equal(one_channel, torch.from_numpy(picture))

    for view in ("norm", "normblur"):
        values = gradient_view(gradient, view)
        v = values.numpy().astype(np.float64)
        levels = np.rint(v / v.max() * (LEVELS - 1)).astype(int)
        for colormap in ("gray", "inferno"):
            picture = render_gradient(values, view, colormap=colormap).numpy()
            assert (picture == colormap_table(colormap)[levels]).all(-1).mean() > 0.999, colormap
        assert render_gradient(values, view).max() == 255, "gray by default, the max white"


def test_lenet_one_channel_raw_renders_signed(lenet, photos):
    x = photo_input(lenet, photos["coffee"])
    result = unit_gradient(lenet.model, x, "conv2", 3, "guided")
    picture = render_gradient(gradient_view(result.gradient[0], "raw"), "raw")
    assert picture.shape == (28, 28, 3)
    assert torch.equal(picture, render_gradient(gradient_view(result.gradient[0], "gray"), "gray"))


# ---------------------------------------------------------------------------------------------------------------------
# Which units fire here


def test_rank_units_against_brute_force():
    generator = torch.Generator().manual_seed(5)
    activation = torch.randn(64, 7, 9, generator=generator)
    activation[10, 3, 4] = activation[20, 3, 4] = 5.0  # a tie: the lower channel first
    for row, col in ((3, 4), (0, 0), (6, 8)):
        values = activation[:, row, col].tolist()
        expected = sorted(range(64), key=lambda c: (-values[c], c))[:10]
        ranked = rank_units_at(activation, row, col, k=10)
        assert [c for c, _ in ranked] == expected
        assert [v for _, v in ranked] == pytest.approx([values[c] for c in expected])
    assert [c for c, _ in rank_units_at(activation, 3, 4, k=2)] == [10, 20]
    assert len(rank_units_at(activation, 0, 0, k=500)) == 64


def test_map_cell_corners_outside_and_round_trip():
    crop = (80, 0, 480, 480)  # the centre square of a 640 x 480 frame
    assert map_cell((80, 0), crop, (13, 13)) == (0, 0)
    assert map_cell((559, 479), crop, (13, 13)) == (12, 12)
    assert map_cell((559, 0), crop, (13, 13)) == (0, 12)
    assert map_cell((80, 479), crop, (13, 13)) == (12, 0)
    for outside in ((79, 10), (560, 10), (100, 480), (100, -1)):
        assert map_cell(outside, crop, (13, 13)) is None
    for index in range(13 * 13):
        assert map_cell(cell_centre(index, (13, 13), crop), crop, (13, 13)) == divmod(index, 13)
    assert map_cell((300, 200), CropRect(*crop), (6, 6)) == map_cell((300, 200), crop, (6, 6)) == (2, 2)


# ---------------------------------------------------------------------------------------------------------------------
# Errors a user can act on


def test_bad_input_raises_clear_errors(alexnet_engine):
    model = alexnet_engine.model
    x = torch.zeros(1, 3, 64, 64)
    cases = [
        (lambda: unit_gradient(model, x, "features.10", 0, "backwards"), OptionError, "backwards"),
        (lambda: relu_backward_rule(model, "backwards").__enter__(), OptionError, "guided"),
        (lambda: gradient_view(torch.zeros(3, 4, 4), "sharp"), OptionError, "normblur"),
        (lambda: render_gradient(torch.zeros(4, 4), "sharp"), OptionError, "sharp"),
        (lambda: unit_gradient(model, x, "features.10", 256, "guided"), ChannelOutOfRangeError, "0..255"),
        (lambda: unit_gradient(model, x, "features.10", -1, "guided"), ChannelOutOfRangeError, "-1"),
        (lambda: unit_gradient(model, x, "features.10", 0, "guided", at=(3, 0)), OptionError, "3 x 3 map"),
        (lambda: unit_gradient(model, x, "classifier.4", 0, "guided", at=(0, 0)), OptionError, "position"),
        (lambda: unit_gradient(model, x, "prob", 0, "guided"), LayerNotFoundError, "livevis layers"),
        (lambda: unit_gradient(model, x, "input", 0, "guided"), LayerNotFoundError, "pseudo-layer"),
        (lambda: unit_gradient(model, x, "features.99", 0, "guided"), LayerNotFoundError, "features.99"),
        (lambda: grad_cam(model, x, "features.10", class_index=1000), OptionError, "0..999"),
        (lambda: grad_cam(model, x, "features.10", class_index=[1, 2]), OptionError, "one per sample"),
        (lambda: grad_cam(model, x, "classifier.4"), OptionError, "spatial"),
        (lambda: render_gradient(torch.zeros(2, 4, 4), "raw"), OptionError, "1 or 3"),
        (lambda: render_gradient(torch.zeros(4, 4), "norm", colormap="signed"), OptionError, "sequential"),
        (lambda: rank_units_at(torch.zeros(8, 3, 3), 3, 0), OptionError, "3 x 3"),
        (lambda: unit_gradient(model, x[0], "features.10", 0, "guided"), LivevisError, "N x C x S x S"),
    ]
    for call, error, words in cases:
        with pytest.raises(error) as info:
            call()
        assert isinstance(info.value, LivevisError)
        assert words in str(info.value), str(info.value)


@pytest.mark.parametrize("mode", ["grad", "deconv", "guided", "gradcam"])
def test_the_live_pass_backpropagates_in_its_one_forward(alexnet_engine, photos, mode):
    """Engine.run with a backward request: the activations and logits of an ordinary forward, and the
    same gradient (or Grad-CAM) as the stand-alone functions give."""
    from livevis.models.attribution.backprop import BackwardRequest

    frame = photos["astronaut"]
    plain = alexnet_engine.run(frame, ["features.10", "features.7"])
    passed = alexnet_engine.run(
        frame, ["features.10", "features.7"], backward=BackwardRequest(mode, "features.10", channel=5)
    )
    for path in ("features.10", "features.7"):
        assert torch.equal(plain.activations[path], passed.activations[path])
    assert torch.equal(plain.logits, passed.logits)
    if mode == "gradcam":
        expected = grad_cam(alexnet_engine.model, plain.input, "features.10")
        assert torch.allclose(passed.backward.cam.cam, expected.cam)
        assert passed.backward.gradient is None
    else:
        expected = unit_gradient(alexnet_engine.model, plain.input, "features.10", 5, mode)
        assert torch.allclose(passed.backward.gradient, expected.gradient)
        assert passed.backward.rule_count == 7


@pytest.mark.parametrize(("engine_name", "expected_layer"), [("alexnet_engine", "avgpool"), ("lite0", "bn2")])
def test_grad_cam_explains_the_class_at_the_last_spatial_layer_unless_told(
    request, photos, engine_name, expected_layer
):
    """At the last layer with maps, as Selvaraju et al. take it, whatever layer the grid shows; a layer given
    is used as it is. The saved map is the formula's at that layer; the picture covers the whole crop."""
    from livevis.models import ViewOptions, Visualizer

    engine = request.getfixturevalue(engine_name)
    assert engine.gradcam_layer().path == expected_layer
    later = [
        layer
        for layer in engine.layers
        if layer.is_spatial
        and engine.layers.index(layer) > engine.layers.index(engine.gradcam_layer())
        and min(layer.shape[1:]) >= 2
    ]
    assert not later, "nothing deeper has maps"
    visualizer = Visualizer(engine)
    frame = photos["chelsea"]
    views = visualizer.process(frame, ViewOptions(backprop="gradcam"), with_activations=True)
    assert views.values["gradcam_layer"] == expected_layer != views.layer.path
    expected = grad_cam(engine.model, torch.from_numpy(views.network_input), expected_layer).cam[0]
    assert torch.allclose(torch.from_numpy(views.values["gradcam_map"]), expected, rtol=1e-4, atol=1e-6)
    picture, crop = views.images["backprop"].astype(int), views.crop
    inside = (picture - frame)[crop.y : crop.y + crop.h, crop.x : crop.x + crop.w]
    assert (np.abs(inside).max(axis=2) > 0).mean() > 0.99, "every pixel of the crop is covered"
    given = visualizer.process(
        frame, ViewOptions(backprop="gradcam", gradcam_layer=views.layer.path), with_activations=True
    )
    assert given.values["gradcam_layer"] == views.layer.path
    assert given.values["gradcam_map"].shape == views.layer.shape[1:]


def test_at_a_clipping_activation_the_gradient_starts_before_the_clip(lite0, photos):
    """EfficientNet-Lite0's default layer is a ReLU6: d/dx of sum(output * input), the output held, by plain
    autograd. A unit saturated at 6 (the strongest there are) still gets a gradient under every rule."""
    layer = lite0.layer().path
    x = F.interpolate(photo_input(lite0, photos["chelsea"]), size=160, mode="bilinear", antialias=True)
    kept = {}
    module = lite0.model.get_submodule(layer)
    handle = module.register_forward_pre_hook(lambda _m, inputs: kept.update(z=inputs[0].clone()))
    leaf = x.detach().clone().requires_grad_(True)
    try:
        with out_of_place_relus(lite0.model):
            lite0.model(leaf)
    finally:
        handle.remove()
    channel, row, col = (int(i) for i in torch.nonzero(kept["z"][0] >= 6)[0])  # a unit saturated at 6
    z = kept["z"][:, channel]
    (expected,) = torch.autograd.grad((z.clamp(0, 6).detach() * z).sum(), leaf)
    assert_same_gradient(unit_gradient(lite0.model, x, layer, channel, "grad").gradient, expected)
    for mode in MODES:
        gradient = unit_gradient(lite0.model, x, layer, channel, mode, at=(row, col)).gradient
        assert gradient.abs().max() > 0, mode


@pytest.mark.parametrize("view", VIEWS)
def test_the_backprop_picture_is_render_gradients_on_either_renderer(view):
    """The live view colours a gradient through the renderer's own lookup: the same picture, within a level
    where a value falls on a rounding tie (OpenCV and torch round the scaled value apart)."""
    from livevis.models.attribution.view import gradient_picture
    from livevis.models.render import OpenCVRenderer, TorchRenderer

    generator = torch.Generator().manual_seed(0)
    for gradient in (torch.randn(3, 40, 40, generator=generator), torch.randn(1, 28, 28, generator=generator)):
        shown = gradient_view(gradient, view)
        expected = render_gradient(shown, view).numpy().astype(int)
        for renderer in (OpenCVRenderer(), TorchRenderer()):
            picture = np.asarray(gradient_picture(renderer, shown, view)).astype(int)
            assert np.abs(picture - expected).max() <= 3 and (picture != expected).any(-1).mean() < 0.01
