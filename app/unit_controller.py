"""The unit pane's background work: an image optimised to excite the selected channel (a cached one shows
at once), with previews, progress and cancel; and the unit's top crops where a folder was mined."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QTimer

from livevis.app.jobs import Job
from livevis.models.dream import dream, load_cached, plan
from livevis.models.progress import Progress

if TYPE_CHECKING:
    from livevis.app.main_window import MainWindow
    from livevis.models import Engine

PREVIEW_EVERY = 16


def cached_image(engine: Engine, layer: str, channel: int, *, progress: Progress) -> np.ndarray | None:
    """Runs as a job (it reads the cache folder): the stored optimised image of a channel, or None."""
    found = load_cached(engine, plan(engine, layer, channel))
    return None if found is None else found.image


def optimised_image(engine: Engine, layer: str, channel: int, *, progress: Progress, partial) -> np.ndarray:
    """Runs as a job: the Lucid-style image that maximises the channel (cached for next time), handing a
    preview on every few steps."""
    request = plan(engine, layer, channel)
    result = dream(engine, request, progress=progress, preview_every=PREVIEW_EVERY,
                   on_preview=lambda _step, image: partial(image))  # fmt: skip
    return result.image


class UnitController:
    def __init__(self, window: MainWindow):
        self.window = window
        self.view = window.live.unit
        self._optimising: Job | None = None
        self.refresh_pending = False
        for event in (window.state.events.layer, window.state.events.channel, window.state.events.model):
            event.connect(lambda *_: self._schedule_refresh())
        self.view.optimise_requested.connect(self.optimise)
        self.view.cancel_requested.connect(self.cancel)

    def _unit(self) -> tuple[Engine, str, int] | None:
        visualizer = self.window.worker.visualizer
        state = self.window.state
        if visualizer is None or not state.layer:
            return None
        return visualizer.engine, state.layer, state.channel

    def _schedule_refresh(self) -> None:
        if not self.refresh_pending:  # once per turn of the event loop, after the whole change
            self.refresh_pending = True
            QTimer.singleShot(0, self.refresh)

    def refresh(self) -> None:
        """Show what is known about the selected unit: its cached optimised image, if any."""
        self.refresh_pending = False
        unit = self._unit()
        if unit is None or self.window.runner.closed:
            return
        engine, layer, channel = unit
        self.view.title.setText(f"unit {engine.layer(layer).name}:{channel}")
        self.view.set_optimised(None)
        job = self.window.runner.submit("looking up the optimised image", cached_image, engine, layer, channel)
        job.succeeded.connect(lambda image, key=(layer, channel): self._show(key, image))
        job.failed.connect(lambda message: self.view.optimised.setToolTip(message))

    def _current(self, key: tuple[str, int]) -> bool:
        return key == (self.window.state.layer, self.window.state.channel)

    def _show(self, key: tuple[str, int], image: np.ndarray | None) -> None:
        if image is not None and self._current(key):
            self.view.set_optimised(image)

    def optimise(self) -> None:
        unit = self._unit()
        if unit is None or self._optimising is not None:
            return
        engine, layer, channel = unit
        key = (layer, channel)
        job = self.window.runner.submit(f"optimising {engine.layer(layer).name}:{channel}", optimised_image,
                                        engine, layer, channel, partial=True)  # fmt: skip
        self._optimising = job
        self.view.set_running(True)
        job.partial.connect(lambda image: self._show(key, image))
        job.progressed.connect(lambda _what, done, total: self.view.set_progress(done, total))
        job.succeeded.connect(lambda image: self._show(key, image))
        job.failed.connect(self.window.show_error)
        job.cancelled.connect(lambda: self.window.status.message("optimisation cancelled", 4000))
        job.ended.connect(self._ended)

    def _ended(self) -> None:
        self._optimising = None
        self.view.set_running(False)

    def cancel(self) -> None:
        if self._optimising is not None:
            self._optimising.cancel()
