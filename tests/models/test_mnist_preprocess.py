"""mnist_style follows MNIST's own recipe, so that LeNet reads digits drawn as users draw them."""

from __future__ import annotations

import cv2
import numpy as np

from livevis.models import Engine
from livevis.models.data.datasets import mnist_split
from livevis.models.data.mnist import mnist_style

SIDE = 280
BRUSH = 24
"""A mouse-drawn stroke on a 280 px canvas, as the draw pad's brush: about 2.4 px once scaled to MNIST."""
WHITE = (255, 255, 255)


def canvas() -> np.ndarray:
    return np.zeros((SIDE, SIDE, 3), np.uint8)


def box_and_centre(image: np.ndarray) -> tuple[int, int, float, float]:
    """(height, width) of the nonzero pixels' box and the centre of mass (row, column) in pixel indices."""
    gray = image[..., 0].astype(np.float64)
    rows, cols = np.nonzero(gray)
    ys, xs = np.indices(gray.shape)
    return (
        rows.max() - rows.min() + 1,
        cols.max() - cols.min() + 1,
        (ys * gray).sum() / gray.sum(),
        (xs * gray).sum() / gray.sum(),
    )


def predicted(engine: Engine, frame: np.ndarray) -> int:
    return engine.top_k(engine.run(frame, []).logits[0].numpy())[0].index


def test_a_wide_stroke_box_is_scaled_to_20_px_and_centred_by_its_mass():
    image = canvas()
    cv2.rectangle(image, (10, 20), (209, 119), WHITE, 10)  # 200 x 100, off-centre, near the top left
    out = mnist_style(image)
    assert out.shape == (28, 28, 3) and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all(), "gray, replicated"
    height, width, row, col = box_and_centre(out)
    assert width == 20 and height == 10, "the long side is 20 px, the aspect kept"
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5


def test_a_thin_tall_stroke_is_20_px_high_with_its_mass_at_the_centre():
    image = canvas()
    cv2.line(image, (230, 150), (250, 270), WHITE, 8)  # low on the right, leaning
    height, width, row, col = box_and_centre(mnist_style(image))
    assert height == 20 and width < 10
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5


def test_dark_ink_on_a_light_ground_is_read_as_ink():
    image = canvas()
    cv2.ellipse(image, (140, 140), (60, 90), 0, 0, 360, WHITE, BRUSH, cv2.LINE_AA)
    assert np.array_equal(mnist_style(255 - image), mnist_style(image))


def test_a_blank_canvas_gives_a_black_digit():
    for blank in (canvas(), canvas() + 255, np.full((SIDE, SIDE), 30, np.uint8)):
        out = mnist_style(blank)
        assert out.shape == (28, 28, 3) and not out.any()


def test_real_mnist_digits_come_back_almost_unchanged(lenet):
    """They were made this way: the recipe finds them already framed, and LeNet reads them as well."""
    _, held_out = mnist_split()
    digits, labels = held_out.images[:300], held_out.labels[:300]
    styled = np.stack([mnist_style(digit) for digit in digits])
    assert np.abs(styled[..., 0].astype(np.int16) - digits).mean() < 3
    raw = lenet.run(np.repeat(digits[..., None], 3, axis=3), []).logits.argmax(1).numpy()
    restyled = lenet.run(styled, []).logits.argmax(1).numpy()
    assert (restyled == labels).mean() >= (raw == labels).mean() - 0.01


def test_a_drawn_one_and_zero_are_read_by_lenet(lenet):
    one = canvas()
    cv2.line(one, (150, 45), (130, 235), WHITE, BRUSH, cv2.LINE_AA)  # a slightly leaning stroke, top to bottom
    zero = canvas()
    cv2.ellipse(zero, (140, 140), (65, 95), 0, 0, 360, WHITE, BRUSH, cv2.LINE_AA)
    assert predicted(lenet, mnist_style(one)) == 1
    assert predicted(lenet, mnist_style(zero)) == 0
    assert predicted(lenet, mnist_style(255 - zero)) == 0, "a black pen on a white canvas too"


def test_a_small_zero_in_a_corner_is_read_once_framed_as_mnist(lenet):
    zero = canvas()
    cv2.ellipse(zero, (70, 80), (30, 45), 0, 0, 360, WHITE, BRUSH // 2, cv2.LINE_AA)
    assert predicted(lenet, mnist_style(zero)) == 0
