"""A vision transformer on the command line: render's attention pictures and arrays against a hand
computation on the saved network input, the layer list, and bad input as one line with exit 2; every
transformer family rendered, its attention against that family's own softmax or a note that says why not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import timm
import torch

from livevis.app.cli import main
from livevis.assets import SAMPLES_DIR
from livevis.models.transformers.attention import attention_modules
from tests.conftest import use_module
from tests.transformer_families import build, numpy_rollout, reference_attention

VIT = "vit_tiny_patch16_224"


def test_render_writes_the_attention_of_the_class_token_and_the_exact_input(tmp_path, capsys):
    torch.manual_seed(11)
    assert (
        main(
            [
                "render",
                str(SAMPLES_DIR / "chelsea.jpg"),
                "--model",
                f"timm:{VIT}",
                "--weights",
                "none",
                "--layer",
                "blocks.5",
                "--save-activations",
                "--out",
                str(tmp_path),
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["attention"] == {"block": "blocks.5", "mode": "heads", "query": None, "heads": 3}
    for name in ("attention", "attention_overlay", "token_norms", "prefix_tokens", "grid", "overlay"):
        assert (tmp_path / f"{name}.png").is_file(), name
    arrays = np.load(tmp_path / "activations.npz")
    network_input = torch.from_numpy(arrays["input"])
    # the model's own mean and std (0.5, as timm's data config says for this ViT), not ImageNet's
    assert -1.0 <= float(network_input.min()) and float(network_input.max()) <= 1.0
    torch.manual_seed(11)
    model = timm.create_model(VIT).eval()  # the same weights: built right after the same seed
    kept = {}

    def keep(_module, _inputs, output):
        kept["x"] = output[0].detach()  # the tokens the attention sees

    model.blocks[5].norm1.register_forward_hook(keep)
    with torch.no_grad():
        _, [(maps, prefix)] = model.forward_intermediates(network_input, indices=[5], return_prefix_tokens=True)
    np.testing.assert_allclose(arrays["activation"], maps[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(arrays["prefix_tokens"], prefix[0].numpy(), atol=1e-5)
    x, weight, bias = kept["x"], model.blocks[5].attn.qkv.weight.detach(), model.blocks[5].attn.qkv.bias.detach()
    q = (x[:1] @ weight[:192].T + bias[:192]).reshape(1, 3, 64).transpose(0, 1)
    k = (x @ weight[192:384].T + bias[192:384]).reshape(-1, 3, 64).transpose(0, 1)
    expected = torch.softmax(q @ k.transpose(1, 2) / 8.0, dim=-1)[:, 0]  # heads x 197, from the class token
    np.testing.assert_allclose(arrays["attention"].reshape(3, -1), expected[:, 1:].numpy(), atol=1e-5)
    np.testing.assert_allclose(arrays["attention_prefix"][:, 0], expected[:, 0].numpy(), atol=1e-5)


def test_layers_lists_blocks_as_token_maps(capsys):
    assert main(["layers", "--model", f"timm:{VIT}", "--weights", "none", "--json"]) == 0
    rows = {row["path"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["blocks.7"]["shape"] == [192, 14, 14] and rows["blocks.7"]["prefix_tokens"] == 1
    assert rows["blocks.7.attn"]["shape"] == [192, 14, 14] and rows["blocks.7.mlp"]["shape"] == [192, 14, 14]
    assert "blocks.7.attn.q_norm" not in rows
    assert all(len(row["shape"]) in (1, 3) for row in rows.values())


NO_GRID_NET = """
import torch
from torch import nn


class Tokens(nn.Module):
    '''Pixels cut into 16 tokens by reshaping, not by a patch convolution: tokens with no grid to lie on.'''

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3 * 64 * 64 // 16, 32)
        self.mix = nn.TransformerEncoderLayer(32, 2, 64, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        tokens = self.embed(x.flatten(1).reshape(x.shape[0], 16, -1))
        return self.head(self.mix(tokens).mean(1))


def build():
    torch.manual_seed(0)
    return Tokens()
"""


@pytest.mark.parametrize(
    "args,message",
    [
        (["--layer", "blocks.3.attn.q_norm"], "layer 'blocks.3.attn.q_norm' is not shown"),
        (["--query", "14,0"], "--query 14,0 is outside blocks.7's 14 x 14 patch grid"),
        (["--attention", "sideways"], "unknown attention mode 'sideways'"),
    ],
)
def test_bad_transformer_options_are_one_line_and_exit_2(args, message, tmp_path, capsys):
    code = main(
        [
            "render",
            str(SAMPLES_DIR / "chelsea.jpg"),
            "--model",
            f"timm:{VIT}",
            "--weights",
            "none",
            "--out",
            str(tmp_path),
            *args,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_an_input_the_patch_embedding_refuses_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "small.npy", np.zeros((3, 100, 100), np.float32))
    code = main(
        [
            "render",
            str(tmp_path / "small.npy"),
            "--model",
            f"timm:{VIT}",
            "--weights",
            "none",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "does not run on a 3 x 100 x 100 input" in err and "3 x 224 x 224" in err


def test_tokens_that_lie_on_no_grid_are_never_drawn(tmp_path, monkeypatch, capsys):
    use_module(tmp_path, monkeypatch, "nogrid", NO_GRID_NET)
    assert main(["layers", "--model", "nogrid:build", "--input-size", "64", "--json"]) == 0
    rows = {row["path"]: row for row in json.loads(capsys.readouterr().out)}
    assert "mix" not in rows and "embed" not in rows  # N x 16 x 32 sequences: not images
    assert all(len(row["shape"]) in (1, 3) for row in rows.values())
    code = main(
        [
            "render",
            str(SAMPLES_DIR / "chelsea.jpg"),
            "--model",
            "nogrid:build",
            "--input-size",
            "64",
            "--weights",
            "none",
            "--layer",
            "mix",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "'mix' is not shown" in err


def test_the_relu_rules_say_plainly_that_a_gelu_model_has_no_relu(tmp_path, capsys):
    assert (
        main(
            [
                "render",
                str(SAMPLES_DIR / "chelsea.jpg"),
                "--model",
                f"timm:{VIT}",
                "--weights",
                "none",
                "--backprop",
                "guided",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "no ReLU in timm:vit_tiny_patch16_224" in out and "guided is the plain gradient" in out
    assert (tmp_path / "backprop.png").is_file()


# ---------------------------------------------------------------------------------------------------------------------
# Every family on the command line


FAMILY_RENDERS = [
    # family, layer, the blocks up to it, query, what heads mode says, what rollout says ('' : it is shown)
    ("beit", "blocks.1", ["blocks.0", "blocks.1"], None, "", ""),
    ("eva02", "blocks.1", ["blocks.0", "blocks.1"], None, "", ""),
    ("deit", "blocks.1", ["blocks.0", "blocks.1"], None, "", ""),
    ("dinov2_registers", "blocks.1", ["blocks.0", "blocks.1"], (3, 5), "", ""),
    ("cait", "blocks.1", ["blocks.0", "blocks.1"], (4, 9), "talking heads", "talking heads mix the heads again"),
    ("xcit", "cls_attn_blocks.1", None, None, "", "XCiT's blocks attend across channels"),
    ("levit", "stages.0.blocks.1", ["stages.0.blocks.0", "stages.0.blocks.1"], (3, 3), "", ""),
    ("levit", "stages.1.blocks.1", None, (2, 5), "", "LeViT's grid shrinks from stage to stage"),
]


def render_family(family: str, layer: str, query, mode: str, out, capsys) -> dict:
    torch.manual_seed(21)
    args = ["render", str(SAMPLES_DIR / "chelsea.jpg"), "--model", f"timm:livevis_test_{family}", "--weights", "none"]
    args += ["--layer", layer, "--attention", mode, "--save-activations", "--out", str(out), "--json"]
    args += ["--query", f"{query[0]},{query[1]}"] if query else []
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("family,layer,blocks,query,note,no_rollout", FAMILY_RENDERS)
def test_render_shows_each_familys_attention_as_its_own_softmax_or_says_why(
    family, layer, blocks, query, note, no_rollout, tmp_path, capsys
):
    summary = render_family(family, layer, query, "heads", tmp_path / "heads", capsys)
    for name in ("grid", "overlay", "token_norms", "attention", "attention_overlay"):
        assert (tmp_path / "heads" / f"{name}.png").is_file(), name
    assert note in (summary["attention_note"] or "") and bool(note) == bool(summary["attention_note"])
    arrays = np.load(tmp_path / "heads" / "activations.npz")
    model = build(family, seed=21)  # the weights render built: the same factory right after the same seed
    x = torch.from_numpy(arrays["input"])
    (module,) = attention_modules(model, layer)
    prefix = arrays["prefix_tokens"].shape[0] if "prefix_tokens" in arrays else 0
    _, rows, cols = arrays["activation"].shape
    row = 0 if query is None else prefix + query[0] * cols + query[1]
    expected = reference_attention(model, module, x)[:, row]
    np.testing.assert_allclose(arrays["attention"].reshape(len(expected), -1), expected[:, prefix:], atol=2e-5)
    np.testing.assert_allclose(arrays["attention_prefix"], expected[:, :prefix], atol=2e-5)
    assert summary["attention"]["query"] == (list(query) if query else None)

    rolled = render_family(family, layer, query, "rollout", tmp_path / "rollout", capsys)
    if no_rollout:
        assert rolled["attention"]["mode"] == "heads" and no_rollout in rolled["attention_note"]
        return
    assert rolled["attention"]["mode"] == "rollout" and rolled["attention_note"] is None
    arrays = np.load(tmp_path / "rollout" / "activations.npz")
    matrices = [reference_attention(model, path, x) for path in (attention_modules(model, b)[0] for b in blocks)]
    np.testing.assert_allclose(
        arrays["attention_rollout"][-1].ravel(), numpy_rollout(matrices)[row, prefix:], atol=2e-5
    )


def test_render_of_cross_covariance_attention_says_in_one_line_why_there_is_no_map(tmp_path, capsys):
    torch.manual_seed(21)
    args = ["render", str(SAMPLES_DIR / "chelsea.jpg"), "--model", "timm:livevis_test_xcit", "--weights", "none"]
    assert main([*args, "--layer", "blocks.1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "attention: XCiT attends across channels, not tokens: no attention map to show\n" in out
    assert (tmp_path / "grid.png").is_file() and (tmp_path / "token_norms.png").is_file()
    assert not (tmp_path / "attention.png").exists()
    for mode in ("heads", "rollout"):
        summary = render_family("xcit", "blocks.1", None, mode, tmp_path / mode, capsys)
        assert summary["attention"] is None and "across channels" in summary["attention_note"]


@pytest.mark.parametrize("model,layer", [("timm:livevis_test_swin", "layers.2.blocks.1"), ("vit_b_16", "")])
def test_render_of_swin_and_torchvisions_vit_still_shows_attention(model, layer, tmp_path, capsys):
    args = ["render", str(SAMPLES_DIR / "chelsea.jpg"), "--model", model, "--weights", "none", "--json"]
    args += ["--layer", layer] if layer else []
    assert main([*args, "--save-activations", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    arrays = np.load(tmp_path / "activations.npz")
    total = arrays["attention"].sum((1, 2)) + arrays["attention_prefix"].sum(1)
    np.testing.assert_allclose(total, 1.0, atol=1e-5)  # each head's softmax, whole (within Swin's window)
    assert summary["attention"]["heads"] == len(total) and summary["attention_note"] is None
