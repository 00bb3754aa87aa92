"""LeNet-5 for 28x28 grayscale digits, and the script that trains the bundled weights.

    python -m livevis.models.zoo.lenet --out assets/weights/lenet_mnist.pth

trains on the 8,000 training digits of the bundled MNIST set (`models.data.datasets.mnist_split`) and
reports accuracy on the 2,000 held-out ones. Deterministic for a given seed and torch version.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from livevis.assets import ASSETS_DIR

MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
WEIGHTS_FILE = ASSETS_DIR / "weights" / "lenet_mnist.pth"


class LeNet5(nn.Module):
    """LeCun et al. (1998), with ReLU and max pooling as it is usually trained today."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        x = self.relu4(self.fc2(x))
        return self.fc3(x)


def to_input(images: np.ndarray) -> torch.Tensor:
    """N x 28 x 28 uint8 -> N x 1 x 28 x 28 normalised float, as the engine feeds the model."""
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
    return (x - MNIST_MEAN[0]) / MNIST_STD[0]


@torch.no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    predicted = torch.cat([model(to_input(images[i : i + 1000])).argmax(1) for i in range(0, len(images), 1000)])
    return float((predicted.numpy() == labels).mean())


def _shifted(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random translations of up to 2 px: cheap augmentation that helps with 8,000 digits."""
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = (torch.rand(len(x), 2, generator=generator) - 0.5) * (4 / 14)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    background = (0 - MNIST_MEAN[0]) / MNIST_STD[0]
    return F.grid_sample(x - background, grid, align_corners=False) + background


def train(epochs: int = 30, seed: int = 0, log=print) -> tuple[LeNet5, float]:
    torch.manual_seed(seed)
    return train_on_mnist(LeNet5(), epochs, seed, log=log)


def train_on_mnist(
    model: nn.Module, epochs: int, seed: int = 0, *, max_lr: float = 3e-3, weight_decay: float = 0.0, log=print
) -> tuple[nn.Module, float]:
    """Adam with a one-cycle schedule on the 8,000 training digits, shifted a little each time; returns the
    model and its accuracy on the 2,000 held-out digits."""
    from ..data.datasets import mnist_split

    generator = torch.Generator().manual_seed(seed)
    train_set, test_set = mnist_split()
    x, y = to_input(train_set.images), torch.from_numpy(train_set.labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=epochs * ((len(x) + 63) // 64))
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(_shifted(x[batch], generator)), y[batch])
            loss.backward()
            optimizer.step()
            schedule.step()
        held_out = accuracy(model, test_set.images, test_set.labels)
        log(
            f"epoch {epoch + 1:2d}/{epochs}  loss {loss.item():.4f}  held-out accuracy {held_out:.4f}  "
            f"({time.perf_counter() - start:.1f} s)"
        )
    return model, accuracy(model, test_set.images, test_set.labels)


def train_and_save(description: str, build: Callable[[], nn.Module], default_out: Path, epochs: int, **options) -> None:
    """The command line of a digits model's training script: --epochs, --seed, --out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model, held_out = train_on_mnist(build(), args.epochs, args.seed, **options)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print(f"held-out accuracy {held_out:.4f}; wrote {args.out}")


def main() -> None:
    train_and_save("Train LeNet-5 on the bundled MNIST digits.", LeNet5, WEIGHTS_FILE, 30)


if __name__ == "__main__":
    main()
