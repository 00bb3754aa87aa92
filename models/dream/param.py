"""Parametrisations: what the optimiser changes, and how it becomes an image in [0, 1].

`FourierImage` is Lucid's (a 1 / frequency scaled spectrum in decorrelated colour, through a sigmoid);
`PixelImage` is the Deep Visualization Toolbox's plain pixels. Each draws its start from its own seed, so an
image is the same alone or in a batch. Kept apart so that the loop does not depend on how the image is held.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
"""Square root of ImageNet's colour correlation (Lucid's), to optimise in decorrelated colour."""
COLOUR_CORRELATION_NORMALISED = COLOUR_CORRELATION_SQRT / COLOUR_CORRELATION_SQRT.norm(dim=0).max()


def decorrelated_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W in decorrelated colour to RGB (before the sigmoid)."""
    return torch.einsum("nchw,dc->ndhw", image, COLOUR_CORRELATION_NORMALISED.to(image.device))


def _normal(shape: Sequence[int], seeds: Sequence[int], scale: float) -> torch.Tensor:
    """One normal draw per image, each from its own seed: an image starts the same alone or in a batch."""
    return torch.stack([torch.randn(*shape, generator=torch.Generator().manual_seed(s)) * scale for s in seeds])


class FourierImage:
    """Lucid's image: a spectrum scaled by 1 / frequency, in decorrelated colour, through a sigmoid.

    Gradient steps on the spectrum move all frequencies at about the same rate, which favours the low
    ones that natural images have; the sigmoid keeps pixels in [0, 1].
    """

    def __init__(
        self,
        seeds: Sequence[int],
        channels: int,
        size: int,
        device: torch.device,
        *,
        sd: float = 0.01,
        decorrelate: bool = True,
    ):
        self.size = size
        self.decorrelate = decorrelate and channels == 3
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        frequencies = torch.sqrt(fx * fx + fy * fy)
        # with torch's orthonormal irfft no sqrt(w * h) factor (TensorFlow's irfft is unnormalised)
        self.scale = (1.0 / torch.clamp(frequencies, min=1.0 / size)).to(device)
        spectrum = _normal((channels, size, size // 2 + 1, 2), seeds, sd)
        self.spectrum = spectrum.to(device).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def image(self) -> torch.Tensor:
        """N x C x S x S in [0, 1]."""
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        image = torch.fft.irfftn(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        if self.decorrelate:
            image = decorrelated_to_rgb(image)
        return torch.sigmoid(image)


class PixelImage:
    """Pixels in the Toolbox's space: 0-255 minus the dataset mean, starting from N(0, 10) noise."""

    def __init__(self, seeds: Sequence[int], mean: Sequence[float], size: int, device: torch.device):
        self.mean255 = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0
        self.pixels = _normal((len(mean), size, size), seeds, 10.0).to(device)

    def parameters(self) -> list[torch.Tensor]:
        return [self.pixels]

    def clip(self) -> None:
        """Back into [0, 255] once the mean is added, as the Toolbox does before each forward."""
        self.pixels = torch.clamp(self.pixels + self.mean255, 0.0, 255.0) - self.mean255

    def image(self) -> torch.Tensor:
        return torch.clamp((self.pixels + self.mean255) / 255.0, 0.0, 1.0)
