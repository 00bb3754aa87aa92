"""Vision transformers: token maps against timm's own `forward_intermediates`, attention against a hand
computation from each block's weights (and against the unfused paths of timm and torch), rollout against a
numpy one, token norms, prefix tokens, and every pane on a token unit.

No trained ViT can be had offline: the models have random weights whose queries and keys are sharpened (the
q and k rows of each attention's projection times 4), so that attention is far from uniform and a wrong
head or token would show.
"""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from livevis.models import Engine, ViewOptions, Visualizer
from livevis.models.atlas import mine
from livevis.models.dream import channel as channel_objective
from livevis.models.dream import optimise, plan
from livevis.models.dream.run import default_transforms
from livevis.models.dream.transforms import transformer_transforms
from livevis.models.embeddings.tsne import activations, default_layers, readout
from livevis.models.errors import LayerNotFoundError
from livevis.models.overview import overview_rows
from livevis.models.render.base import colormap_table
from livevis.models.transformers.attention import (
    AttentionInputs,
    attention_matrix,
    attention_modules,
    query_attention,
    rollout,
    window_geometry,
)
from livevis.models.zoo.spec import ModelSpec, imagenet_categories
from livevis.models.zoo.weights import WeightsInfo

SHARPEN = 4.0
VIT_MNIST_ACCURACY = 0.95
"""The bundled ViT for digits: 97.35% on all 2,000 held-out digits when trained."""
VIEWS = ("grid", "selected", "predictions", "attention", "token_norms", "prefix_tokens")


def sharpen(model: nn.Module) -> nn.Module:
    """Queries and keys times SHARPEN in every attention: peaky attention from random weights."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("qkv.weight", "in_proj_weight")):
                third = parameter.shape[0] // 3
                parameter[: 2 * third] *= SHARPEN
    return model


def engine_of(model: nn.Module, input_size: int = 224, name: str = "test-transformer") -> Engine:
    """An engine over a model built here (random weights, seeded by the caller)."""
    spec = ModelSpec(
        name=name,
        family="factory",
        build=lambda: model,
        default_layer="",
        input_size=input_size,
        categories=imagenet_categories,
    )
    return Engine(spec, model, WeightsInfo(False, "random"), torch.device("cpu"))


@pytest.fixture(scope="module")
def vit() -> Engine:
    torch.manual_seed(0)
    return engine_of(sharpen(timm.create_model("vit_tiny_patch16_224")))


@pytest.fixture(scope="module")
def deit() -> Engine:
    torch.manual_seed(1)
    return engine_of(sharpen(timm.create_model("deit_tiny_distilled_patch16_224")))


@pytest.fixture(scope="module")
def swin() -> Engine:
    torch.manual_seed(2)
    return engine_of(sharpen(timm.create_model("swin_tiny_patch4_window7_224")))


@pytest.fixture(scope="module")
def photo_input(photos) -> np.ndarray:
    return photos["astronaut"]


def network_input(engine: Engine, frame: np.ndarray) -> torch.Tensor:
    with torch.inference_mode():
        x, _ = engine.preprocess(engine.upload(frame))
    return x.clone()


# ---------------------------------------------------------------------------------------------------------------------
# Token maps


@pytest.mark.parametrize("fixture", ["vit", "deit", "swin"])
def test_blocks_are_listed_as_maps_and_no_token_sequence_as_an_image(fixture, request):
    engine: Engine = request.getfixturevalue(fixture)
    token_count = 197 if fixture == "vit" else 198 if fixture == "deit" else 56 * 56
    assert len(engine.blocks) == 12
    for layer in engine.layers[1:]:
        assert len(layer.shape) in (1, 3), layer.label
        if len(layer.shape) == 3:
            assert token_count not in layer.shape and layer.shape[1:] in ((14, 14), (56, 56), (28, 28), (7, 7))
    assert engine.blocks[5].shape == ((384, 14, 14) if fixture == "swin" else (192, 14, 14))
    assert engine.default_layer in engine.blocks[6:9]  # middle-to-late
    hidden = "blocks.3.attn.q_norm" if fixture != "swin" else "layers.1.blocks.0.attn.qkv"
    with pytest.raises(LayerNotFoundError, match="not shown"):
        engine.layer(hidden)


@pytest.mark.parametrize("fixture,prefix", [("vit", ["class"]), ("deit", ["class", "distillation"])])
def test_token_maps_and_prefix_tokens_equal_timms_forward_intermediates(fixture, prefix, request, photo_input):
    engine: Engine = request.getfixturevalue(fixture)
    assert engine.tokens.prefix == prefix
    result = engine.run(photo_input, ["blocks.5", "blocks.9"])
    x = result.input
    with torch.inference_mode():
        _, intermediates = engine.model.forward_intermediates(x, indices=[5, 9], return_prefix_tokens=True)
    for path, (maps, tokens) in zip(("blocks.5", "blocks.9"), intermediates, strict=True):
        torch.testing.assert_close(result.activations[path], maps[0])
        torch.testing.assert_close(result.prefix_tokens[path], tokens[0])


def test_registers_are_prefix_tokens_of_their_own():
    torch.manual_seed(3)
    model = timm.create_model("vit_small_patch14_reg4_dinov2", img_size=112)
    engine = engine_of(model, 112)
    assert engine.tokens.prefix == ["class", "register 0", "register 1", "register 2", "register 3"]
    assert engine.default_layer.shape == (384, 8, 8) and engine.default_layer.prefix_tokens == 5


def test_swin_stages_are_read_channels_last(swin, photo_input):
    result = swin.run(photo_input, ["layers.1", "layers.2"])
    with torch.inference_mode():
        stages = swin.model.forward_intermediates(result.input, indices=[1, 2], intermediates_only=True)
    torch.testing.assert_close(result.activations["layers.1"], stages[0][0])
    torch.testing.assert_close(result.activations["layers.2"], stages[1][0])
    assert swin.layer("layers.2").shape == (384, 14, 14) and swin.tokens.prefix == []


def test_a_non_square_input_splits_into_its_own_patch_grid():
    torch.manual_seed(4)
    model = timm.create_model("vit_tiny_patch16_224", img_size=64, dynamic_img_size=True, num_classes=10)
    engine = engine_of(model, 64)
    assert engine.layer("blocks.1").shape == (192, 4, 4)
    tensor = np.random.default_rng(0).standard_normal((3, 64, 96)).astype(np.float32)
    result = engine.run(tensor, ["blocks.1"])
    with torch.inference_mode():
        _, (maps,) = model.forward_intermediates(torch.from_numpy(tensor)[None], indices=[1], return_prefix_tokens=True)
    assert result.activations["blocks.1"].shape == (192, 4, 6)
    torch.testing.assert_close(result.activations["blocks.1"], maps[0][0])


@pytest.mark.parametrize("name,grid", [("vit_b_16", (768, 14, 14)), ("swin_t", (384, 14, 14))])
def test_torchvision_transformers_by_name(name, grid):
    engine = Engine.load(name, weights="none", device="cpu", progress=False)
    assert engine.default_layer in engine.blocks and engine.default_layer.shape == grid
    assert all(len(layer.shape) in (1, 3) for layer in engine.layers)


# ---------------------------------------------------------------------------------------------------------------------
# Attention


def hand_attention(model: nn.Module, block: str, x: torch.Tensor) -> torch.Tensor:
    """Every head's softmax(q k^T / sqrt(d)) of a timm ViT block, from its weights alone: heads x T x T."""
    attn = model.get_submodule(f"{block}.attn")
    kept = {}
    handle = model.get_submodule(f"{block}.norm1").register_forward_hook(lambda m, i, o: kept.setdefault("x", o))
    with torch.no_grad():
        model(x)
    handle.remove()
    tokens = kept["x"][0].detach()  # T x D
    dim, heads = tokens.shape[1], attn.num_heads
    weight, bias = attn.qkv.weight, attn.qkv.bias
    q = (tokens @ weight[:dim].T + bias[:dim]).reshape(-1, heads, dim // heads).transpose(0, 1)
    k = (tokens @ weight[dim : 2 * dim].T + bias[dim : 2 * dim]).reshape(-1, heads, dim // heads).transpose(0, 1)
    return torch.softmax(q @ k.transpose(1, 2) / (dim // heads) ** 0.5, dim=-1).detach()


def attention_views(engine: Engine, frame, **options):
    visualizer = Visualizer(engine, ViewOptions(views=VIEWS))
    return visualizer.process(frame, ViewOptions(views=VIEWS, **options), with_activations=True)


def test_attention_from_the_class_token_and_from_a_patch_equals_a_hand_computation(vit, photo_input):
    views = attention_views(vit, photo_input)
    block = views.values["attention_block"]
    assert block == vit.block_of(vit.default_layer).path == vit.default_layer.path
    expected = hand_attention(vit.model, block, network_input(vit, photo_input))
    maps, prefix = views.values["attention_maps"], views.values["attention_prefix"]
    assert maps.shape == (3, 14, 14) and prefix.shape == (3, 1)
    np.testing.assert_allclose(maps.reshape(3, -1), expected[:, 0, 1:].numpy(), atol=1e-5)
    np.testing.assert_allclose(prefix[:, 0], expected[:, 0, 0].numpy(), atol=1e-5)
    assert expected[:, 0].max() > 10 / 197  # sharp: a wrong token would not match
    assert not np.allclose(maps[0], maps[1], atol=1e-3)  # heads differ: a wrong head would not match
    row, col = 4, 9
    asked = attention_views(vit, photo_input, attention_query=(row, col), attention_head=1)
    token = 1 + row * 14 + col
    np.testing.assert_allclose(asked.values["attention_maps"].reshape(3, -1), expected[:, token, 1:].numpy(), atol=1e-5)
    assert asked.values["attention_query_cell"] == (row, col)


@pytest.mark.parametrize("name", ["eva02_tiny_patch14_224", "deit_tiny_distilled_patch16_224"])
def test_attention_equals_timms_unfused_softmax(name, photo_input):
    torch.manual_seed(5)
    engine = engine_of(sharpen(timm.create_model(name)))
    x = network_input(engine, photo_input)
    block = engine.default_layer.path
    (module,) = attention_modules(engine.model, block)
    reference_model = copy.deepcopy(engine.model)
    unfused = reference_model.get_submodule(module)
    unfused.fused_attn = False
    kept = {}
    unfused.attn_drop.register_forward_hook(lambda m, i, o: kept.setdefault("attention", o[0]))
    with torch.no_grad():
        reference_model(x)
    with torch.no_grad(), AttentionInputs(engine.model, [module]) as inputs:
        engine.model(x)
    prefix = engine.default_layer.prefix_tokens
    found = query_attention(
        engine.model, module, inputs.inputs[module], grid=(engine.default_layer.shape[1:]), prefix=prefix, query=(2, 3)
    )
    token = prefix + 2 * engine.default_layer.shape[2] + 3
    torch.testing.assert_close(found.patch.flatten(1), kept["attention"][:, token, prefix:], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        attention_matrix(engine.model, module, inputs.inputs[module]), kept["attention"], atol=1e-5, rtol=1e-4
    )


def small_torchvision_vit() -> nn.Module:
    torch.manual_seed(6)
    return sharpen(
        torchvision.models.VisionTransformer(
            image_size=64, patch_size=16, num_layers=3, num_heads=2, hidden_dim=32, mlp_dim=64
        )
    )


def test_torchvision_vit_attention_equals_multihead_attentions_own_weights():
    engine = engine_of(small_torchvision_vit(), 64)
    x = torch.randn(1, 3, 64, 64)
    block = engine.blocks[1].path
    (module,) = attention_modules(engine.model, block)
    with torch.no_grad(), AttentionInputs(engine.model, [module]) as inputs:
        engine.model(x)
    query, *_ = inputs.inputs[module][0]
    with torch.no_grad():
        _, weights = engine.model.get_submodule(module)(
            query, query, query, need_weights=True, average_attn_weights=False
        )
    found = query_attention(engine.model, module, inputs.inputs[module], grid=(4, 4), prefix=1, query=None)
    torch.testing.assert_close(found.patch.flatten(1), weights[0, :, 0, 1:], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(found.prefix, weights[0, :, 0, :1], atol=1e-6, rtol=1e-5)


def test_swin_window_attention_equals_the_unfused_window_softmax(swin, photo_input):
    x = network_input(swin, photo_input)
    block = "layers.2.blocks.1"  # a shifted block: windows wrap around the grid
    (module,) = attention_modules(swin.model, block)
    reference = copy.deepcopy(swin.model)
    unfused = reference.get_submodule(module)
    unfused.fused_attn = False
    kept = {}
    unfused.softmax.register_forward_hook(lambda m, i, o: kept.setdefault("attention", o))
    with torch.no_grad():
        reference(x)
    with torch.no_grad(), AttentionInputs(swin.model, [module]) as inputs:
        swin.model(x)
    geometry = window_geometry(swin.model.get_submodule(module), swin.model.get_submodule(block), (14, 14))
    assert geometry.shift == (3, 3)
    for cell in [(0, 0), (13, 13), (2, 12), (12, 1), (7, 7)]:
        found = query_attention(swin.model, module, inputs.inputs[module], grid=(14, 14), prefix=0, query=cell)
        window, position = geometry.locate(*cell)
        cells = geometry.cells(window)
        mine = torch.stack([found.patch[:, r, c] for r, c in cells], 1)
        torch.testing.assert_close(mine, kept["attention"][window, :, position], atol=1e-6, rtol=1e-5)
        assert float(found.patch.sum((1, 2)).min()) == pytest.approx(1.0, abs=1e-5)  # all within the window
        assert (found.patch > 0).sum((1, 2)).max() <= 49


def test_torchvision_swin_window_attention_equals_its_own_softmax(monkeypatch):
    torch.manual_seed(7)
    model = torchvision.models.SwinTransformer(
        patch_size=[4, 4], embed_dim=24, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4], num_classes=10
    )
    engine = engine_of(sharpen(model), 48)
    x = torch.randn(1, 3, 48, 48)
    block = "features.1.1"  # shifted; the 12 x 12 grid is three windows a side
    (module,) = attention_modules(engine.model, block)
    with torch.no_grad(), AttentionInputs(engine.model, [module]) as inputs:
        engine.model(x)
    softmaxes = []
    plain = F.softmax
    monkeypatch.setattr(
        torch.nn.functional, "softmax", lambda t, *a, **k: softmaxes.append(plain(t, *a, **k)) or softmaxes[-1]
    )
    with torch.no_grad():
        engine.model.get_submodule(module)(inputs.inputs[module][0][0])
    monkeypatch.undo()
    geometry = window_geometry(engine.model.get_submodule(module), engine.model.get_submodule(block), (12, 12))
    for cell in [(0, 0), (11, 11), (1, 10), (6, 5)]:
        found = query_attention(engine.model, module, inputs.inputs[module], grid=(12, 12), prefix=0, query=cell)
        window, position = geometry.locate(*cell)
        mine = torch.stack([found.patch[:, r, c] for r, c in geometry.cells(window)], 1)
        torch.testing.assert_close(mine, softmaxes[0][window, :, position], atol=1e-6, rtol=1e-5)


def test_rollout_equals_a_numpy_rollout(vit, photo_input):
    views = attention_views(vit, photo_input, attention="rollout")
    x = network_input(vit, photo_input)
    block_index = vit.blocks.index(vit.default_layer)
    expected = np.eye(197)
    for block in vit.blocks[: block_index + 1]:
        mean = hand_attention(vit.model, block.path, x).mean(0).numpy().astype(np.float64)
        mixed = 0.5 * np.eye(197) + 0.5 * mean
        expected = (mixed / mixed.sum(1, keepdims=True)) @ expected
    rolled = views.values["rollout_maps"]
    assert rolled.shape == (block_index + 1, 14, 14)
    np.testing.assert_allclose(rolled[-1].ravel(), expected[0, 1:], atol=1e-5)
    assert views.values["attention_mode"] == "rollout"
    steps = rollout([torch.eye(3)[None] * 0 + torch.full((1, 3, 3), 1 / 3)])
    torch.testing.assert_close(steps[0], 0.5 * torch.eye(3) + 0.5 / 3)


def test_swin_has_no_rollout_and_says_why(swin, photo_input):
    views = attention_views(swin, photo_input, attention="rollout", attention_query=(5, 5))
    assert views.values["attention_mode"] == "heads" and "windows" in views.values["attention_note"]
    assert views.values["attention_window"] is not None


# ---------------------------------------------------------------------------------------------------------------------
# Token norms, prefix tokens


def test_token_norms_mark_a_high_norm_token(vit, photo_input):
    layer = vit.default_layer
    cell = (6, 10)

    def boost(_module, _inputs, output):
        output = output.clone()
        output[:, 1 + cell[0] * 14 + cell[1]] *= 25.0
        return output

    handle = vit.model.get_submodule(layer.path).register_forward_hook(boost)
    try:
        views = attention_views(vit, photo_input)
    finally:
        handle.remove()
    norms = np.linalg.norm(views.activation, axis=0)
    np.testing.assert_allclose(views.values["token_norm_map"], norms, rtol=1e-5)
    assert views.values["token_outliers"] == [cell]
    assert "token_norms" in views.images
    prefix = views.prefix_tokens
    np.testing.assert_allclose(views.values["prefix_norms"], np.linalg.norm(prefix, axis=1), rtol=1e-5)


def test_prefix_tokens_are_drawn_on_the_grids_layout(deit, photo_input):
    views = attention_views(deit, photo_input)
    layout = views.values["prefix_layout"]
    grid = views.values["grid_layout"]
    assert (layout.rows, layout.cols) == (grid.rows, grid.cols) and views.values["prefix_names"] == [
        "class",
        "distillation",
    ]
    image = views.images["prefix_tokens"]
    assert image.shape == (grid.rows * 4, 2 * grid.cols * 4 + 6, 3)
    # each channel's value in the distillation token takes the colour the grid gives that value: the layer's
    # one signed scale (max |x| over the maps), the value held to its channel's range in the maps
    maps = views.activation.reshape(views.activation.shape[0], -1)
    low, high = maps.min(1), maps.max(1)
    span = max(high.max(), -low.min())
    held = np.clip(views.prefix_tokens[1], low, high)
    levels = np.rint(held * (127 / span) + 127).astype(int)
    table = colormap_table("signed")
    for channel in (0, 7, int(np.argmax(held)), int(np.argmin(held))):
        row, col = divmod(channel, grid.cols)
        cell = image[row * 4 + 1, grid.cols * 4 + 6 + col * 4 + 1].astype(int)
        assert np.abs(cell - table[levels[channel]]).max() <= 2, channel


# ---------------------------------------------------------------------------------------------------------------------
# The other panes on a token unit


def test_a_token_units_gradient_is_plain_autograd_and_the_relu_rules_say_they_do_not_apply(vit, photo_input):
    layer, channel = vit.default_layer, 7
    x = network_input(vit, photo_input).requires_grad_(True)
    with torch.enable_grad():
        outputs = {}
        handle = vit.model.get_submodule(layer.path).register_forward_hook(lambda m, i, o: outputs.setdefault("o", o))
        vit.model(x)
        handle.remove()
        unit = outputs["o"][:, 1:, channel]  # the channel over the patch grid
        (expected,) = torch.autograd.grad(unit, x, grad_outputs=unit.detach())
    for mode in ("grad", "guided"):
        views = Visualizer(vit, ViewOptions(views=("grid", "backprop"))).process(
            photo_input, ViewOptions(views=("grid", "backprop"), channel=channel, backprop=mode), with_activations=True
        )
        torch.testing.assert_close(
            torch.from_numpy(views.values["backprop_gradient"]), expected[0], atol=1e-5, rtol=1e-3
        )
        assert views.values["backprop_rule_count"] == 0


def test_grad_cam_at_a_block_is_the_formula_on_its_token_maps(vit, photo_input):
    layer, klass = vit.default_layer, 3
    x = network_input(vit, photo_input)
    outputs = {}
    handle = vit.model.get_submodule(layer.path).register_forward_hook(lambda m, i, o: outputs.setdefault("o", o))
    with torch.enable_grad():
        logits = vit.model(x)
        handle.remove()
        tokens = outputs["o"]
        (grad,) = torch.autograd.grad(logits[0, klass], tokens)
    maps = tokens[0, 1:].detach().T.reshape(-1, 14, 14)
    weights = grad[0, 1:].T.reshape(-1, 14, 14).mean((1, 2))
    expected = torch.relu((weights[:, None, None] * maps).sum(0))
    options = ViewOptions(views=("backprop",), backprop="gradcam", class_index=klass, gradcam_layer=layer.path)
    views = Visualizer(vit, options).process(photo_input, options, with_activations=True)
    torch.testing.assert_close(torch.from_numpy(views.values["gradcam_map"]), expected, atol=1e-5, rtol=1e-4)


def test_units_at_a_spot_rank_the_token_channels(vit, photo_input):
    visualizer = Visualizer(vit, ViewOptions(views=("grid",)))
    views = visualizer.process(photo_input, with_activations=True, frame_key=1)
    crop = views.crop
    cell, ranked = visualizer.units_at((crop.x + crop.w * 0.75, crop.y + crop.h * 0.25))
    assert cell == (3, 10)
    brute = sorted(range(192), key=lambda c: -views.activation[c, 3, 10])[:10]
    assert [channel for channel, _ in ranked] == brute


def test_mining_a_folder_ranks_token_units_as_a_brute_force_does(vit, photos, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, image in photos.items():
        assert cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    layer = vit.default_layer.path
    (atlas,) = mine(vit, folder, [layer], top=2, workers=0)
    names = sorted(photos)
    maxima = np.stack(
        [vit.run(photos[name], [layer]).activations[layer].flatten(1).max(1).values.numpy() for name in names]
    )
    for channel in range(0, 192, 17):
        best = sorted(range(len(names)), key=lambda i: (-maxima[i, channel], i))[:2]
        assert [Path(e.image).stem for e in atlas.entries(channel)] == [names[i] for i in best]
        np.testing.assert_allclose([e.value for e in atlas.entries(channel)], maxima[best, channel], rtol=1e-4)


def test_an_optimised_image_raises_a_token_channel_with_the_transformer_transforms(vit):
    transforms = default_transforms(vit, 224)
    assert len(transforms) == len(transformer_transforms(224, 16))
    request = plan(vit, vit.default_layer.path, 5, steps=6)
    result = optimise(vit, channel_objective(vit.default_layer.path, 5), steps=6, seed=0)
    assert result.images.shape == (1, 224, 224, 3) and request.steps == 6
    assert result.objective[-1] > result.objective[0]


def test_the_network_overview_has_a_row_per_block_and_embeddings_read_the_tokens(vit, photo_input):
    rows = overview_rows(vit, photo_input, [block.path for block in vit.blocks[:3]], channels=8)
    assert [row.path for row in rows[1:]] == ["blocks.0", "blocks.1", "blocks.2"]
    assert all(row.maps.shape == (8, 14, 14) for row in rows[1:])
    result = vit.run(np.stack([photo_input, photo_input[::-1]]), ["blocks.4"])
    points = activations(
        vit, np.stack([photo_input, photo_input[::-1]]), [readout(vit, "blocks.4:class"), readout(vit, "blocks.4:mean")]
    )
    np.testing.assert_allclose(points["blocks.4:class"], result.prefix_tokens["blocks.4"][:, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(points["blocks.4:mean"], result.activations["blocks.4"].mean((2, 3)).numpy(), rtol=1e-5)
    defaults = [r.path for r in default_layers(vit)]
    assert defaults[:3] == ["input", "blocks.0:class", "blocks.0:mean"] and len(defaults) == 25


# ---------------------------------------------------------------------------------------------------------------------
# A trained transformer: livevis's own ViT for digits


@pytest.fixture(scope="module")
def vit_mnist() -> Engine:
    return Engine.load("vit_mnist", device="cpu", progress=False)


def test_the_trained_vit_reads_held_out_digits(vit_mnist):
    from livevis.models.data.datasets import mnist_split

    held_out = mnist_split()[1]
    result = vit_mnist.run(np.repeat(held_out.images[:500, :, :, None], 3, axis=3), [])
    accuracy = float((result.logits.argmax(1).numpy() == held_out.labels[:500]).mean())
    assert accuracy > VIT_MNIST_ACCURACY
    assert vit_mnist.tokens.prefix == ["class", "register 0", "register 1"]
    assert vit_mnist.default_layer.path == "blocks.2" and vit_mnist.default_layer.shape == (64, 7, 7)


def test_the_trained_vits_class_token_attends_to_the_ink(vit_mnist):
    """The class token of the last block, mean of its heads, gives a patch with ink several times the weight
    it gives a blank one: attention computed right follows the digit (a wrong head or token would not)."""
    from livevis.models.data.datasets import mnist_split

    digits = mnist_split()[1].images[:40]
    visualizer = Visualizer(vit_mnist, ViewOptions(views=VIEWS))
    ratios = []
    for digit in digits:
        frame = np.repeat(digit[:, :, None], 3, axis=2)
        views = visualizer.process(frame, ViewOptions(views=VIEWS, layer="blocks.3"), with_activations=True)
        weights = views.values["attention_maps"].mean(0)  # 7 x 7, each cell a 4 x 4 patch
        ink = digit.reshape(7, 4, 7, 4).max((1, 3)) > 128
        ratios.append(weights[ink].mean() / max(weights[~ink].mean(), 1e-9))
    assert np.median(ratios) > 2.0


def test_grad_cam_of_a_vit_looks_where_its_last_attention_does(vit_mnist):
    """The class reads the class token alone: Grad-CAM is taken at the last block's norm (the attention's
    input), where the patch tokens still get a gradient, and it lights up the digit's ink."""
    from livevis.models.data.datasets import mnist_split

    assert vit_mnist.gradcam_layer().path == "blocks.3.norm1"
    held_out = mnist_split()[1]
    visualizer = Visualizer(vit_mnist)
    ratios = []
    for digit in held_out.images[:20]:
        frame = np.repeat(digit[:, :, None], 3, axis=2)
        views = visualizer.process(frame, ViewOptions(views=("backprop",), backprop="gradcam"), with_activations=True)
        cam, ink = views.values["gradcam_map"], digit.reshape(7, 4, 7, 4).max((1, 3)) > 128
        assert cam.max() > 0
        ratios.append(cam[ink].mean() / max(cam[~ink].mean(), 1e-9))
    assert np.median(ratios) > 2.0
