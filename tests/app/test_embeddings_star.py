"""The Embeddings tab places the frame shown now, also a still one that arrived while the tab was hidden."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QThread, QThreadPool

from livevis.app.live.jobs import JobRunner
from livevis.app.tabs.embeddings import EmbeddingsTab
from livevis.models.data.datasets import mnist_split

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One map cache for these tests: the first computes the maps, the others read them."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def tab(qtbot, cache, monkeypatch):
    """A tab of its own, LeNet on 300 held-out MNIST digits; no thread or job may outlive it."""
    monkeypatch.setenv("LIVEVIS_CACHE", str(cache))
    runner = JobRunner()
    tab = EmbeddingsTab(runner)
    qtbot.addWidget(tab)
    tab.samples.setValue(300)
    tab.layers.setText("fc3")
    yield tab
    tab.shutdown()
    assert runner.shutdown()
    alive = [thread for thread in tab.findChildren(QThread) if not thread.isFinished()]
    assert not alive, f"threads outlived the tab: {alive}"
    assert QThreadPool.globalInstance().activeThreadCount() == 0


@pytest.fixture(scope="module")
def digit() -> tuple[np.ndarray, int]:
    """A training digit (the map is made of held-out ones) as the RGB frame a still image would be."""
    train, _ = mnist_split()
    image = train.images[0]
    return np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2)), int(train.labels[0])


def compute(qtbot, tab: EmbeddingsTab) -> None:
    tab.start("mnist")
    qtbot.waitUntil(lambda: tab.run is not None, timeout=TIMEOUT_MS)


def nearest_labels(tab: EmbeddingsTab, panel: int, k: int = 10) -> np.ndarray:
    coords = tab.run.layers[panel].coords
    distance = np.linalg.norm(coords - np.asarray(tab.plots.marker_position(panel)), axis=1)
    return tab.run.labels[np.argsort(distance)[:k]]


def test_a_still_frame_offered_while_hidden_gets_its_star_after_compute(qtbot, tab, digit):
    frame, _ = digit
    assert not tab.isVisible()
    tab.offer_frame(frame, 0.0)  # the live view's frame, offered before any map exists
    compute(qtbot, tab)
    qtbot.waitUntil(lambda: tab.plots.marker_position(0) is not None, timeout=TIMEOUT_MS)


def test_the_star_of_a_digit_lands_among_its_class(qtbot, tab, digit):
    frame, label = digit
    tab.offer_frame(frame, 0.0)
    compute(qtbot, tab)
    qtbot.waitUntil(lambda: tab.plots.marker_position(0) is not None, timeout=TIMEOUT_MS)
    assert np.bincount(nearest_labels(tab, 0), minlength=10).argmax() == label


def test_the_star_is_placed_again_when_the_tab_is_shown_without_a_new_frame(qtbot, tab, digit):
    frame, _ = digit
    compute(qtbot, tab)
    assert tab.plots.marker_position(0) is None, "no frame yet: no star"
    tab.offer_frame(frame, 0.0)  # hidden: kept, not placed
    assert tab.placer.slot.captured == 0
    with qtbot.waitSignal(tab.placer.placed, timeout=TIMEOUT_MS):
        tab.show()
    first = tab.plots.marker_position(0)
    assert first is not None
    tab.hide()
    tab.plots.set_marker(0, None)
    with qtbot.waitSignal(tab.placer.placed, timeout=TIMEOUT_MS):
        tab.show()
    assert tab.plots.marker_position(0) is not None
    assert tab.placer.slot.captured == 2, "placed on each show, from the one frame offered"


def test_choosing_another_layer_places_the_frame_there(qtbot, tab, digit):
    frame, _ = digit
    tab.layers.setText("relu4,fc3")
    tab.offer_frame(frame, 0.0)
    compute(qtbot, tab)
    qtbot.waitUntil(lambda: tab.plots.marker_position(1) is not None, timeout=TIMEOUT_MS)
    first_placer = tab.placer
    tab.place_in.setCurrentIndex(0)
    tab.place_in.activated.emit(0)
    assert tab.placer is not first_placer
    qtbot.waitUntil(lambda: tab.plots.marker_position(0) is not None, timeout=TIMEOUT_MS)
    assert tab.plots.marker_position(1) is None, "one star, in the chosen layer's map"
    qtbot.waitUntil(lambda: first_placer not in tab._retiring, timeout=TIMEOUT_MS)


def test_shutdown_waits_for_a_placer_still_building_its_index(qtbot, tab, digit):
    compute(qtbot, tab)
    placer = tab.placer
    tab.shutdown()  # right after the start: the neighbour index is most likely still being built
    assert placer.isFinished() and tab.placer is None and not tab._retiring


def test_an_exception_in_the_placer_thread_is_shown_and_it_goes_on(qtbot, tab, digit, monkeypatch):
    from livevis.models.embeddings.tsne import MapPlacer

    frame, _ = digit
    compute(qtbot, tab)
    real, failures = MapPlacer.place, iter([RuntimeError("CUDA out of memory")])

    def failing_once(self, flat):
        error = next(failures, None)
        if error is not None:
            raise error
        return real(self, flat)

    monkeypatch.setattr(MapPlacer, "place", failing_once)
    tab.show()
    tab.offer_frame(frame, 1.0)
    qtbot.waitUntil(lambda: "unexpected RuntimeError: CUDA out of memory" in tab.status.text(), timeout=TIMEOUT_MS)
    assert tab.placer.isRunning(), "the placer goes on"
    tab.offer_frame(frame, 2.0)
    qtbot.waitUntil(lambda: tab.plots.marker_position(0) is not None, timeout=TIMEOUT_MS)
