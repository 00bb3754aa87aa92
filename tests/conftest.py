"""Shared fixtures: real photos, a real video written from them, and models built once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Qt without a screen, on a virtual screen of 1600 x 1000 (the offscreen platform's own is 800 x 800)
if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={Path(__file__).with_name('offscreen_screen.json')}"
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from livevis.assets import SAMPLES_DIR  # noqa: E402


@pytest.fixture(scope="session")
def chelsea_path() -> Path:
    return SAMPLES_DIR / "chelsea.jpg"


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photographs from scikit-image and scikit-learn, RGB uint8."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    return {
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "astronaut": data.astronaut(),
        "china": load_sample_image("china.jpg"),
    }


def use_module(folder: Path, monkeypatch, name: str, source: str) -> None:
    """A user's own module `name`.py in `folder`, the working folder for the test, imported afresh."""
    (folder / f"{name}.py").write_text(source)
    monkeypatch.chdir(folder)
    monkeypatch.delitem(sys.modules, name, raising=False)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="session")
def pan_video(tmp_path_factory, photos) -> Path:
    """A 24-frame 320x240 video panning across a real photo (china.jpg)."""
    image = photos["china"]
    frames = [np.ascontiguousarray(image[40:280, 10 * i : 10 * i + 320]) for i in range(24)]
    return write_video(tmp_path_factory.mktemp("video") / "pan.mp4", frames)


@pytest.fixture(scope="session")
def alexnet_engine():
    from livevis.models import Engine

    torch.manual_seed(0)
    return Engine.load("alexnet", weights="none", device="cpu")


@pytest.fixture(scope="session")
def resnet18_engine():
    from livevis.models import Engine

    torch.manual_seed(0)
    return Engine.load("resnet18", weights="none", device="cpu")


@pytest.fixture(scope="session")
def lenet():
    """The bundled LeNet, trained on real MNIST digits."""
    from livevis.models import Engine

    return Engine.load("lenet", device="cpu")


@pytest.fixture(scope="session")
def lite0():
    """Google's trained EfficientNet-Lite0 (ImageNet), from its pip package: offline."""
    from livevis.models import Engine

    return Engine.load("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="session")
def alexnet_weights_file(tmp_path_factory) -> Path:
    """A state dict of a torchvision AlexNet (seeded random init) saved the way users save theirs."""
    import torchvision

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "alexnet_seed1.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path
