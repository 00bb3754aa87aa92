"""Units switched off, set to their means or scaled in the forward pass, against independent forwards of the
same weights with a hook written here; the impact ranking's measured changes against such forwards, and its
estimates against autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livevis.models import Engine, ViewOptions, Visualizer
from livevis.models.concepts.edit import ConceptEdit
from livevis.models.interventions import UnitEdit, format_channels, parse_channels
from livevis.models.interventions.impact import channel_impact
from livevis.models.pipeline import save_activations


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(3)
    return Engine.load("timm:vit_tiny_patch16_224", weights="none", device="cpu")


def hooked_logits(model, x, path: str, change) -> torch.Tensor:
    """The model's logits with `change(output)` replacing the module's output: the reference, written apart
    from livevis's hooks (a module run twice is changed at its last call, as its layer stands for)."""
    module = model.get_submodule(path)
    calls = []
    with torch.inference_mode():
        counting = module.register_forward_hook(lambda *_: calls.append(1))
        model(x)
        counting.remove()
        total, seen = len(calls), []

        def hook(_module, _inputs, output):
            seen.append(1)
            return change(output.clone()) if len(seen) == total else None

        handle = module.register_forward_hook(hook)
        try:
            return model(x).float()
        finally:
            handle.remove()


def edited_probs(engine, frame, edits):
    views = Visualizer(engine).process(frame, ViewOptions(edits=edits, compare=True), with_activations=True)
    return views


@pytest.mark.parametrize("mode", ["zero", "mean", "scale"])
def test_probs_edited_equal_a_forward_with_the_channels_edited_by_a_hook(alexnet_engine, resnet18_engine, photos, mode):
    frame = photos["chelsea"]
    for engine, path, channels in (
        (alexnet_engine, "features.10", (3, 17, *range(40, 64))),
        (resnet18_engine, "layer2.0.relu", (0, 5, 9)),  # a ReLU run twice a block: its last call
    ):
        means = tuple(float(v) for v in np.linspace(0.1, 0.9, len(channels))) if mode == "mean" else None
        index = list(channels)
        edit = UnitEdit(path, channels, mode, factor=2.5, means=means)
        views = edited_probs(engine, frame, (edit,))
        x = torch.from_numpy(views.network_input)

        def change(output, index=index, means=means):
            if mode == "zero":
                output[:, index] = 0
            elif mode == "scale":
                output[:, index] *= 2.5
            else:
                output[:, index] = torch.tensor(means).reshape(-1, 1, 1)
            return output

        expected = hooked_logits(engine.model, x, path, change).softmax(1)[0].numpy()
        np.testing.assert_allclose(views.values["probs_edited"], expected, rtol=1e-4, atol=1e-6)
        plain = hooked_logits(engine.model, x, path, lambda output: output).softmax(1)[0].numpy()
        np.testing.assert_allclose(views.values["probs"], plain, rtol=1e-4, atol=1e-6)
        assert not np.allclose(views.values["probs_edited"], views.values["probs"], rtol=1e-3, atol=0), "it changed"


def test_a_transformers_channel_is_a_feature_of_every_token_the_prefix_tokens_included(vit, photos):
    channels = (1, 7, 100)
    edit = UnitEdit("blocks.6", channels, "zero")
    views = edited_probs(vit, photos["coffee"], (edit,))
    x = torch.from_numpy(views.network_input)

    def change(tokens):  # N x (1 + 196) x D: the class token is a token too
        tokens[:, :, list(channels)] = 0
        return tokens

    expected = hooked_logits(vit.model, x, "blocks.6", change).softmax(1)[0].numpy()
    np.testing.assert_allclose(views.values["probs_edited"], expected, rtol=1e-4, atol=1e-6)


def test_the_mean_mode_without_means_takes_them_over_the_frames_seen(alexnet_engine, photos):
    edit = UnitEdit("features.10", (3, 4), "mean")
    visualizer = Visualizer(alexnet_engine)
    first = visualizer.process(photos["chelsea"], ViewOptions(edits=(edit,), compare=True), with_activations=True)
    second = visualizer.process(photos["coffee"], ViewOptions(edits=(edit,), compare=True), with_activations=True)
    seen = np.concatenate([v.activation[[3, 4]].reshape(2, -1) for v in (first, second)], axis=1).mean(1)
    x = torch.from_numpy(second.network_input)

    def change(output):
        output[:, [3, 4]] = torch.tensor(seen, dtype=output.dtype).reshape(-1, 1, 1)
        return output

    expected = hooked_logits(alexnet_engine.model, x, "features.10", change).softmax(1)[0].numpy()
    np.testing.assert_allclose(second.values["probs_edited"], expected, rtol=1e-4, atol=1e-6)


def test_a_rectangle_of_cells_and_the_layer_as_measured(alexnet_engine, photos):
    edit = UnitEdit("features.10", tuple(range(256)), "zero", cells=(2, 3, 6, 9))
    views = Visualizer(alexnet_engine).process(
        photos["chelsea"], ViewOptions(layer="features.10", edits=(edit,), compare=True), with_activations=True
    )
    assert views.activation_edited is None, "the edited layer itself is shown as measured"
    x = torch.from_numpy(views.network_input)

    def change(output):
        output[:, :, 2:6, 3:9] = 0
        return output

    expected = hooked_logits(alexnet_engine.model, x, "features.10", change).softmax(1)[0].numpy()
    np.testing.assert_allclose(views.values["probs_edited"], expected, rtol=1e-4, atol=1e-6)
    reference = Visualizer(alexnet_engine).process(photos["chelsea"], ViewOptions(layer="features.10"))
    np.testing.assert_array_equal(views.values["channel_max"], reference.values["channel_max"])


def test_a_later_layer_is_saved_both_ways(alexnet_engine, photos, tmp_path):
    edit = UnitEdit("features.10", tuple(range(64)), "zero")
    views = Visualizer(alexnet_engine).process(
        photos["chelsea"], ViewOptions(layer="fc7", edits=(edit,)), with_activations=True
    )
    save_activations(tmp_path / "a.npz", views)
    saved = np.load(tmp_path / "a.npz")
    x = torch.from_numpy(saved["input"])
    captured = {}
    fc7 = alexnet_engine.model.get_submodule(alexnet_engine.layer("fc7").path)
    handle = fc7.register_forward_hook(lambda _m, _i, out: captured.update(fc7=out.clone()))  # the last pass

    def change(output):
        output[:, :64] = 0
        return output

    try:
        hooked_logits(alexnet_engine.model, x, "features.10", change)
    finally:
        handle.remove()
    np.testing.assert_allclose(saved["activation_edited"], captured["fc7"][0].numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(saved["activation"], saved["activation_edited"])
    assert {"probs", "probs_edited"} <= set(saved.files)


@pytest.mark.parametrize("which", ["alexnet", "resnet18", "vit"])
def test_the_measured_impact_equals_forwards_with_each_channel_off(alexnet_engine, resnet18_engine, vit, photos, which):
    engine, path = {
        "alexnet": (alexnet_engine, "features.10"),
        "resnet18": (resnet18_engine, "layer3"),
        "vit": (vit, "blocks.8"),
    }[which]
    layer = engine.layer(path)
    x = engine.run(photos["chelsea"], []).input
    impact = channel_impact(engine, x, layer, measured=6)
    assert len(impact.measured) == 6
    for channel, change in impact.measured.items():
        index = [channel]

        def off(output, index=index):
            if output.dim() == 3:
                output[:, :, index] = 0
            else:
                output[:, index] = 0
            return output

        logits = hooked_logits(engine.model, x, path, off)
        assert change == pytest.approx(float(logits[0, impact.class_index]) - impact.score, abs=2e-4)
    # the estimates: gradient . (0 - activation), the gradient of the score at the layer by autograd
    captured = {}
    module = engine.model.get_submodule(path)

    def leaf(_module, _inputs, output):  # the layer's output as a leaf of its own, a copy passed on
        captured["out"] = output.detach().clone().requires_grad_()
        return captured["out"].clone()

    handle = module.register_forward_hook(leaf)
    with torch.enable_grad():
        logits = engine.model(x.clone())
    handle.remove()
    (gradient,) = torch.autograd.grad(logits[0, impact.class_index], captured["out"])
    out = captured["out"].detach()
    change = (-out * gradient)[0]
    # tokens (T x D): a channel is a feature of every token, the class token included; maps: C x H x W
    expected = change.sum(0) if out.dim() == 3 else change.reshape(change.shape[0], -1).sum(1)
    np.testing.assert_allclose(impact.estimates, expected.numpy(), rtol=1e-3, atol=1e-5)


def test_a_concept_taken_out_removes_its_part_of_each_cell(lite0, photos):
    from livevis.models.concepts.nmf import factorise, min_shifted, project

    layer = lite0.layer()
    activation = lite0.run(photos["chelsea"], [layer.path]).activations[layer.path]
    V, _ = min_shifted(activation.numpy())
    factors = factorise(V, 4)
    concepts = tuple(tuple(float(v) for v in row) for row in np.asarray(factors.channels))
    edit = ConceptEdit(layer.path, concepts, (1,))
    W = torch.tensor(np.asarray(factors.channels)).t()
    H = project(min_shifted(activation)[0], W)
    expected = (W[:, 1:2] @ H[1:2]).reshape(activation.shape)
    torch.testing.assert_close(edit.parts(activation[None])[0], expected, rtol=1e-4, atol=1e-5)
    kept = ConceptEdit(layer.path, concepts, (1,), strength=1.0).apply(activation[None], None)[0][0]
    torch.testing.assert_close(kept, activation, msg="strength 1 leaves the layer as it was")


def test_channel_lists_parse_and_print_alike():
    assert parse_channels("3,17,40-63") == (3, 17, *range(40, 64))
    assert format_channels(parse_channels("3,17,40-63")) == "3, 17, 40-63"
    for bad in ("3,,4", "a", "9-2"):
        with pytest.raises(Exception, match="channels|counts up"):
            parse_channels(bad)


def test_an_edit_that_does_not_fit_is_one_line(alexnet_engine):
    from livevis.models.errors import OptionError

    with pytest.raises(OptionError, match="out of range"):
        alexnet_engine.checked_edits([UnitEdit("conv5", (300,))])
    with pytest.raises(OptionError, match="not a rectangle"):
        alexnet_engine.checked_edits([UnitEdit("conv5", (1,), cells=(0, 0, 20, 2))])
    with pytest.raises(OptionError, match="no maps"):
        alexnet_engine.checked_edits([UnitEdit("fc7", (1,), cells=(0, 0, 1, 1))])


def test_the_python_api_edits_inside_its_block_only(alexnet_engine, photos):
    frame = photos["coffee"]
    before = alexnet_engine.run(frame, []).logits
    with alexnet_engine.edited([UnitEdit("conv5", tuple(range(128)))]):
        inside = alexnet_engine.run(frame, []).logits
    after = alexnet_engine.run(frame, []).logits
    assert torch.equal(before, after) and not torch.allclose(before, inside)
