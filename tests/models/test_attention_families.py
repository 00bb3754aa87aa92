"""Each transformer family's attention as livevis shows it, against an independent computation of that family's
softmax (`tests.transformer_families`), its rollout against a numpy one, its token maps against timm's own
`forward_intermediates`, and what cannot be shown saying why instead of showing a map that lies."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from livevis.models import Engine, ViewOptions, Visualizer
from livevis.models.dream.run import default_transforms
from livevis.models.dream.transforms import transformer_transforms
from livevis.models.transformers.attention import attention_modules, attention_unavailable
from livevis.models.zoo.spec import ModelSpec, imagenet_categories
from livevis.models.zoo.weights import WeightsInfo
from tests.transformer_families import FAMILIES, build, numpy_rollout, reference_attention

VIEWS = ("grid", "selected", "attention", "token_norms", "prefix_tokens")


def engine_of(family: str) -> Engine:
    model = build(family)
    size = FAMILIES[family][1].get("img_size", 224)
    spec = ModelSpec(
        name=f"livevis_test_{family}",
        family="factory",
        build=lambda: model,
        default_layer="",
        input_size=size,
        categories=imagenet_categories,
    )
    return Engine(spec, model, WeightsInfo(False, "random"), torch.device("cpu"))


@pytest.fixture(scope="module")
def engines() -> dict[str, Engine]:
    return {}


@pytest.fixture
def engine(request, engines) -> Engine:
    family = request.param
    if family not in engines:
        engines[family] = engine_of(family)
    return engines[family]


@pytest.fixture(scope="module")
def photo(photos) -> np.ndarray:
    return photos["astronaut"]


def views_of(engine: Engine, frame: np.ndarray, **options):
    return Visualizer(engine, ViewOptions(views=VIEWS)).process(
        frame, ViewOptions(views=VIEWS, **options), with_activations=True
    )


def reference(engine: Engine, block: str, views) -> torch.Tensor:
    """heads x queries x tokens: the reference attention of the block's attention module on the views' input."""
    (module,) = attention_modules(engine.model, block)
    return reference_attention(engine.model, module, torch.from_numpy(views.network_input))


# ---------------------------------------------------------------------------------------------------------------------
# Attention that is shown: equal to the family's own softmax


CLASS_TOKEN = [
    ("beit", "blocks.1"),
    ("beit_shared", "blocks.1"),
    ("eva02", "blocks.1"),
    ("deit", "blocks.1"),
    ("dinov2_registers", "blocks.1"),
    ("xcit", "cls_attn_blocks.1"),  # class attention after the channel-attention blocks
]
"""Family, block: models with a class token, asked from it."""


@pytest.mark.parametrize("engine,block", CLASS_TOKEN, indirect=["engine"])
def test_attention_from_the_class_token_equals_the_familys_own_softmax(engine, block, photo):
    views = views_of(engine, photo, layer=block)
    assert views.values["attention_block"] == block and views.values["attention_note"] == ""
    expected = reference(engine, block, views)[:, 0]  # heads x tokens, from the class token
    prefix = views.layer.prefix_tokens
    maps, weights = views.values["attention_maps"], views.values["attention_prefix"]
    np.testing.assert_allclose(maps.reshape(len(maps), -1), expected[:, prefix:].numpy(), atol=2e-5)
    np.testing.assert_allclose(weights, expected[:, :prefix].numpy(), atol=2e-5)
    assert float(expected.max()) > 2 / expected.shape[-1]  # far from uniform: a wrong token would not match
    assert not np.allclose(maps[0], maps[1], atol=1e-3)  # heads differ: a wrong head would not match


QUERY = [
    ("beit", "blocks.1", (3, 11)),
    ("beit_shared", "blocks.0", (9, 2)),
    ("eva02", "blocks.1", (5, 7)),
    ("dinov2_registers", "blocks.0", (6, 1)),
    ("cait", "blocks.1", (4, 9)),  # talking heads; no class token in these blocks
    ("levit", "stages.0.blocks.1", (2, 12)),  # attention biases over a 14 x 14 grid
    ("levit", "stages.1.blocks.2", (5, 1)),  # ... over 7 x 7
    ("levit", "stages.2.blocks.3", (1, 2)),  # ... over 4 x 4
]


@pytest.mark.parametrize("engine,block,cell", QUERY, indirect=["engine"])
def test_attention_from_a_patch_equals_the_familys_own_softmax(engine, block, cell, photo):
    views = views_of(engine, photo, layer=block, attention_query=cell)
    assert views.values["attention_query_cell"] == cell
    _, rows, cols = views.layer.shape
    prefix = views.layer.prefix_tokens
    expected = reference(engine, block, views)[:, prefix + cell[0] * cols + cell[1]]
    maps = views.values["attention_maps"]
    assert maps.shape[1:] == (rows, cols)
    np.testing.assert_allclose(maps.reshape(len(maps), -1), expected[:, prefix:].numpy(), atol=2e-5)
    assert float(expected.max()) > 2 / expected.shape[-1]
    assert not np.allclose(maps[0], maps[1], atol=1e-3)


@pytest.mark.parametrize("engine", ["cait"], indirect=True)
def test_talking_heads_say_the_heads_are_mixed_again(engine, photo):
    views = views_of(engine, photo, layer="blocks.0")
    assert "talking heads" in views.values["attention_note"] and "proj_w" in views.values["attention_note"]
    assert views.values["attention_query_cell"] is None  # no class token: asked from the centre patch
    expected = reference(engine, "blocks.0", views)[:, 7 * 14 + 7]
    np.testing.assert_allclose(views.values["attention_maps"].reshape(4, -1), expected.numpy(), atol=2e-5)


@pytest.mark.parametrize("engine", ["xcit"], indirect=True)
def test_class_attention_asked_from_a_patch_answers_from_the_class_token_and_says_so(engine, photo):
    views = views_of(engine, photo, layer="cls_attn_blocks.0", attention_query=(3, 3))
    assert views.values["attention_note"] == "class attention asks from the class token alone"
    assert views.values["attention_query_cell"] is None
    expected = reference(engine, "cls_attn_blocks.0", views)[:, 0]
    np.testing.assert_allclose(views.values["attention_maps"].reshape(4, -1), expected[:, 1:].numpy(), atol=2e-5)


# ---------------------------------------------------------------------------------------------------------------------
# Rollout


ROLLOUT = [
    ("beit", "blocks.1"),
    ("beit_shared", "blocks.1"),
    ("eva02", "blocks.1"),
    ("deit", "blocks.1"),
    ("dinov2_registers", "blocks.1"),
    ("levit", "stages.0.blocks.1"),  # within the first stage: one grid
]


@pytest.mark.parametrize("engine,block", ROLLOUT, indirect=["engine"])
def test_rollout_equals_a_numpy_rollout_of_the_reference_attention(engine, block, photo):
    layer = engine.layer(block)
    prefix, (_, _rows, cols) = layer.prefix_tokens, layer.shape
    query = None if prefix else (7, 7)  # no class token (LeViT): from a patch
    views = views_of(engine, photo, layer=block, attention="rollout", attention_query=query)
    assert views.values["attention_mode"] == "rollout" and views.values["attention_note"] == ""
    blocks = engine.blocks[: engine.blocks.index(layer) + 1]
    expected = numpy_rollout([reference(engine, b.path, views) for b in blocks])
    row = 0 if query is None else query[0] * cols + query[1]
    rolled = views.values["rollout_maps"]
    assert rolled.shape[0] == len(blocks) > 1
    np.testing.assert_allclose(rolled[-1].ravel(), expected[row, prefix:], atol=2e-5)
    np.testing.assert_allclose(views.values["rollout_prefix"][-1], expected[row, :prefix], atol=2e-5)


NO_ROLLOUT = [
    ("cait", "blocks.1", "talking heads mix the heads again after the softmax"),
    ("xcit", "cls_attn_blocks.1", "XCiT's blocks attend across channels"),
    ("levit", "stages.1.blocks.0", "LeViT's grid shrinks from stage to stage"),
    ("swin", "layers.2.blocks.1", "this model attends in windows"),
]


@pytest.mark.parametrize("engine,block,why", NO_ROLLOUT, indirect=["engine"])
def test_no_rollout_says_why_and_shows_the_heads(engine, block, why, photo):
    views = views_of(engine, photo, layer=block, attention="rollout")
    assert views.values["attention_mode"] == "heads" and why in views.values["attention_note"]
    assert len(views.values["attention_note"].splitlines()) == 1
    assert "attention" in views.images


# ---------------------------------------------------------------------------------------------------------------------
# No map where there is no token-to-token attention


@pytest.mark.parametrize("engine", ["xcit"], indirect=True)
def test_cross_covariance_attention_shows_no_map_and_says_why(engine, photo):
    for mode in ("heads", "rollout"):
        views = views_of(engine, photo, layer="blocks.1", attention=mode)
        assert views.values["attention_note"] == "XCiT attends across channels, not tokens: no attention map to show"
        assert "attention" not in views.images and "attention_overlay" not in views.images
        assert "grid" in views.images and "token_norms" in views.images  # its token maps are shown


def test_an_attention_livevis_does_not_know_says_so_rather_than_guess(photos):
    torch.manual_seed(0)
    model = timm.create_model("test_vit_relpos").eval()  # relative position attention of another kind
    size = model.patch_embed.img_size[0]
    spec = ModelSpec(
        name="relpos",
        family="factory",
        build=lambda: model,
        default_layer="",
        input_size=size,
        categories=imagenet_categories,
    )
    engine = Engine(spec, model, WeightsInfo(False, "random"), torch.device("cpu"))
    views = views_of(engine, photos["coffee"], layer=engine.blocks[-1].path)
    note = views.values["attention_note"]
    assert "does not know how RelPosAttention" in note and "no attention map to show" in note
    assert "attention" not in views.images and "grid" in views.images


# ---------------------------------------------------------------------------------------------------------------------
# Token maps


INTERMEDIATES = [
    ("beit", ["blocks.0", "blocks.1"], True),
    ("eva02", ["blocks.0", "blocks.1"], True),
    ("cait", ["blocks.0", "blocks.1"], False),
    ("xcit", ["blocks.0", "blocks.1"], False),
    ("levit", ["stages.0", "stages.1", "stages.2"], False),
]


@pytest.mark.parametrize("engine,paths,prefix", INTERMEDIATES, indirect=["engine"])
def test_token_maps_equal_timms_forward_intermediates(engine, paths, prefix, photo):
    result = engine.run(photo, paths)
    with torch.inference_mode():
        if prefix:
            _, found = engine.model.forward_intermediates(result.input, return_prefix_tokens=True)
            maps = [spatial for spatial, _tokens in found]
        else:
            maps = engine.model.forward_intermediates(result.input, intermediates_only=True)
    assert len(maps) == len(paths)
    for path, expected in zip(paths, maps, strict=True):
        torch.testing.assert_close(result.activations[path], expected[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("engine", ["levit", "xcit"], indirect=True)
def test_a_convolutional_stem_is_shown_as_maps_and_its_tokens_as_a_grid(engine):
    shapes = {layer.path: layer.shape for layer in engine.layers}
    stem = "stem.act1" if "stem.act1" in shapes else "patch_embed.proj.1"
    assert shapes[stem] == (16, 112, 112)  # the stem's strided convolutions, as in any convolutional network
    assert all(len(shape) in (1, 3) for shape in shapes.values())
    assert all(len(shape) == 3 for path, shape in shapes.items() if path.startswith(("blocks", "stages")))
    assert engine.blocks and all(block.is_spatial for block in engine.blocks)
    assert engine.tokens.grid.discovered == (14, 14)  # 16-pixel patches: the feature visualisation jitters by one
    assert len(default_transforms(engine, 224)) == len(transformer_transforms(224, 16))


def test_levits_convolutional_variant_is_not_taken_for_its_token_variant():
    model = timm.create_model("levit_conv_128s")
    note = attention_unavailable(model.stages[0].blocks[0].attn)
    assert "convolutional variant" in note and "no attention map to show" in note
    assert attention_unavailable(timm.create_model("levit_128s").stages[0].blocks[0].attn) == ""
