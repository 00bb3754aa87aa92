"""Small members of each timm transformer family, registered with timm as `livevis_test_<family>` (so that
`--model timm:livevis_test_beit` builds one), and each family's attention computed independently of livevis.

No trained weights can be had offline. Random weights give near-uniform attention and timm initialises
BEiT's relative position bias, LeViT's attention biases and BEiT's query bias to zero, so a formula that
left them out would still match: every model here has its queries and keys sharpened and those biases drawn
at random, so that a missing term, a wrong head or a wrong token shows.

The references: timm's own unfused path (`fused_attn = False`, the softmax read off `attn_drop`); for CaiT's
talking heads, the softmax read off the input of `proj_w`, which mixes the heads after it; for LeViT, whose
softmax is never a module's output, its formula written out here (batch norm from its statistics, the bias of
each pair of cells from their offset) and checked by rebuilding the module's own output from it.
"""

from __future__ import annotations

import copy

import numpy as np
import timm
import torch
from timm.models import register_model
from torch import nn

SHARPEN = 4.0

FAMILIES: dict[str, tuple[str, dict]] = {
    "beit": ("beit_base_patch16_224", dict(depth=2, embed_dim=192, num_heads=3)),
    "beit_shared": (
        "beit_base_patch16_224",
        dict(depth=2, embed_dim=192, num_heads=3, use_rel_pos_bias=False, use_shared_rel_pos_bias=True),
    ),
    "eva02": ("eva02_tiny_patch14_224", dict(depth=2)),
    "cait": ("cait_xxs24_224", dict(depth=2, depth_token_only=1)),
    "xcit": ("xcit_nano_12_p16_224", dict(depth=2)),
    "levit": ("levit_128s", dict()),
    "deit": ("deit_tiny_distilled_patch16_224", dict(depth=2)),
    "dinov2_registers": ("vit_small_patch14_reg4_dinov2", dict(depth=2, img_size=112, dynamic_img_size=True)),
    "swin": ("swin_tiny_patch4_window7_224", dict(depths=(2, 2, 2, 2))),
}
"""Family -> (timm model, the options that make it small)."""


@torch.no_grad()
def roughen(model: nn.Module) -> nn.Module:
    """Sharpened queries and keys; the position biases, query biases and prefix tokens timm starts at (or
    near) zero drawn at random."""
    for name, parameter in model.named_parameters():
        if name.endswith("qkv.weight") and "qkv.linear" not in name:  # LeViT's q, k, v lie per head
            third = parameter.shape[0] // 3
            parameter[: 2 * third] *= SHARPEN
        elif name.endswith(("attn.q.weight", "attn.k.weight", "q_proj.weight", "k_proj.weight")):
            parameter *= SHARPEN
        elif name.endswith(("relative_position_bias_table", "attention_biases")):
            parameter.normal_(0.0, 1.0)
        elif name.endswith("q_bias"):
            parameter.normal_(0.0, 0.5)
        elif name.endswith("proj_l.weight"):  # CaiT: heads mixed before the softmax (timm starts them tiny)
            parameter.normal_(0.0, 0.5)
        elif name in ("cls_token", "reg_token"):  # DINOv2 starts them near zero: a layer norm leaves them so
            parameter.normal_(0.0, 1.0)
    return model.eval()


def _entry_point(family: str, name: str, options: dict):
    def build(pretrained: bool = False, **kwargs) -> nn.Module:
        return roughen(timm.create_model(name, pretrained=False, **{**options, **kwargs}))

    build.__name__ = f"livevis_test_{family}"
    return build


for _family, (_name, _options) in FAMILIES.items():
    if not timm.is_model(f"livevis_test_{_family}"):
        register_model(_entry_point(_family, _name, _options))


def build(family: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(f"livevis_test_{family}")


# ---------------------------------------------------------------------------------------------------------------------
# References


def module_input(model: nn.Module, path: str, x: torch.Tensor) -> torch.Tensor:
    """The first argument the module `path` is called with when the model runs on `x`."""
    kept = {}

    def keep(_module, args) -> None:
        kept["x"] = args[0]

    handle = model.get_submodule(path).register_forward_pre_hook(keep)
    with torch.no_grad():
        model(x)
    handle.remove()
    return kept["x"]


@torch.no_grad()
def reference_attention(model: nn.Module, path: str, x: torch.Tensor) -> torch.Tensor:
    """The softmax attention of the module `path` when the model runs on `x` (one image): heads x queries x
    tokens (class attention: one query, the class token's)."""
    module = model.get_submodule(path)
    kind = type(module).__name__
    if kind == "Attention" and type(module).__module__ == "timm.models.levit":
        return _levit_reference(module, module_input(model, path, x))
    reference = copy.deepcopy(model)
    kept = {}

    def keep(attention: torch.Tensor) -> None:
        kept["a"] = attention

    copied = reference.get_submodule(path)
    if kind == "TalkingHeadAttn":  # the softmax is what proj_w mixes: B x N x N x H
        copied.proj_w.register_forward_pre_hook(lambda _m, args: keep(args[0][0].permute(2, 0, 1)))
    else:
        copied.fused_attn = False
        copied.attn_drop.register_forward_hook(lambda _m, _i, output: keep(output[0]))
    reference(x)
    return kept["a"]


def _levit_reference(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    linear, norm = module.qkv.linear, module.qkv.bn
    y = x @ linear.weight.T
    y = (y - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias
    batch, tokens, _ = y.shape
    per_head = y.reshape(batch, tokens, module.num_heads, -1)
    d = module.key_dim
    q, k, v = per_head[..., :d], per_head[..., d : 2 * d], per_head[..., 2 * d :]
    rows, cols = module.resolution
    cells = [(r, c) for r in range(rows) for c in range(cols)]
    offsets = torch.tensor([[abs(a[0] - b[0]) * cols + abs(a[1] - b[1]) for b in cells] for a in cells])
    scores = torch.einsum("bnhd,bmhd->bhnm", q, k) / d**0.5 + module.attention_biases[:, offsets]
    attention = scores.softmax(-1)
    # the module's own output, rebuilt from these weights: they are the ones it applies
    mixed = (attention @ v.transpose(1, 2)).transpose(1, 2).reshape(batch, tokens, -1)
    torch.testing.assert_close(module.proj(mixed), module(x), atol=1e-4, rtol=1e-4)
    return attention[0]


def numpy_rollout(matrices: list[torch.Tensor]) -> np.ndarray:
    """Attention rollout of heads x T x T matrices, in float64: 0.5 identity + 0.5 mean of the heads, rows
    normalised, multiplied from the first block up."""
    size = matrices[0].shape[-1]
    result = np.eye(size)
    for attention in matrices:
        mixed = 0.5 * np.eye(size) + 0.5 * attention.double().mean(0).numpy()
        result = (mixed / mixed.sum(1, keepdims=True)) @ result
    return result
