"""Synthetic frames for the benchmark: no file needed, the same frames on every machine."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livevis.models.errors import InputError


@dataclass(frozen=True)
class Resolution:
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Resolution:
        try:
            width, height = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise InputError(f"resolution {text!r} is not WIDTHxHEIGHT, e.g. 640x480") from None
        if width < 16 or height < 16 or width > 8192 or height > 8192:
            raise InputError(f"resolution {text!r} is out of range (16..8192 per side)")
        return cls(width, height)


def synthetic_frames(resolution: Resolution, count: int = 32, seed: int = 0) -> list[np.ndarray]:
    """Frames of bright blobs moving over a textured background: real work for every layer,
    no file needed. Generated once up front so that the benchmark's decode stage costs nothing."""
    rng = np.random.default_rng(seed)
    h, w = resolution.height, resolution.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    background = (rng.random((h // 8 + 1, w // 8 + 1, 3)) * 255).astype(np.uint8)
    background = cv2.resize(background, (w, h), interpolation=cv2.INTER_CUBIC)
    frames = []
    for i in range(count):
        t = 2 * np.pi * i / count
        frame = background.astype(np.float32) * 0.5
        for k, color in enumerate(((255, 64, 32), (32, 200, 255), (240, 240, 64))):
            cx = w * (0.5 + 0.3 * np.cos(t + 2.1 * k))
            cy = h * (0.5 + 0.3 * np.sin(1.3 * t + 2.1 * k))
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.08 * min(h, w)) ** 2))
            frame += blob[..., None] * np.array(color, dtype=np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames
