"""A small vision transformer for 28x28 grayscale digits, with two registers, and the script that trains the
bundled weights:

    python -m livevis.models.zoo.vit_mnist --out assets/weights/vit_mnist.pth

timm's own VisionTransformer (patches of 4 x 4 pixels: a 7 x 7 grid; 4 blocks of 4 heads, 64 wide; a class
token and two register tokens, as in Darcet et al. 2024), trained on the 8,000 training digits of the bundled
MNIST set and measured on the 2,000 held-out ones: a trained transformer that needs no network, so that its
attention can be watched for real.
"""

from __future__ import annotations

from torch import nn

from livevis.assets import ASSETS_DIR

from .lenet import train_and_save

WEIGHTS_FILE = ASSETS_DIR / "weights" / "vit_mnist.pth"


def vit_mnist() -> nn.Module:
    import timm

    return timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        img_size=28,
        patch_size=4,
        in_chans=1,
        num_classes=10,
        embed_dim=64,
        depth=4,
        num_heads=4,
        mlp_ratio=2.0,
        reg_tokens=2,
        drop_path_rate=0.05,
    )


def main() -> None:
    train_and_save(
        "Train the small ViT on the bundled MNIST digits.", vit_mnist, WEIGHTS_FILE, 40, max_lr=2e-3, weight_decay=0.05
    )


if __name__ == "__main__":
    main()
