"""The unit pane's background work: an image optimised to excite the selected channel (a cached one shows
at once), with previews, progress and cancel; and the unit's top crops where a folder was mined."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QWidget

from livevis.app.live.jobs import Job
from livevis.app.panes.base import Pane, PaneServices, column
from livevis.app.sources.files import read_entry, read_frame
from livevis.models.atlas.mining import load_atlas, mine, mined_folders
from livevis.models.atlas.mosaics import unit_mosaics
from livevis.models.dream.run import dream, load_cached, plan
from livevis.models.progress import Progress, report
from livevis.widgets.unit_view import UnitView

if TYPE_CHECKING:
    from livevis.models import Engine

PREVIEW_EVERY = 16


def atlas_of_unit(engine: Engine, layer: str, channel: int, folder: str | None, *, progress: Progress) -> dict:
    """Runs as a job (it reads files and runs backward passes): the folders mined for the layer, and the
    unit's top crops and their deconvolutions from the chosen one (the newest current one by default)."""
    folders = [mined for mined in mined_folders(engine, layer) if mined.current]
    chosen = next((m.folder for m in folders if str(m.folder) == folder), folders[0].folder if folders else None)
    found = {"folders": [str(m.folder) for m in folders], "folder": chosen and str(chosen)}
    atlas = load_atlas(engine, chosen, layer) if chosen is not None else None
    if atlas is None:
        return found
    report(progress, "what drives the unit in its top images", 0, 1)
    mosaics = unit_mosaics(engine, atlas, channel, read_entry)
    return {**found, "mosaics": mosaics, "entries": atlas.entries(channel), "images": atlas.images}


def mine_folder(engine: Engine, folder: str, layer: str, *, progress: Progress) -> int:
    """Runs as a job: the layer's top images in a folder (decoded on this thread: no worker processes
    inside the app); returns how many images were read."""
    (atlas,) = mine(engine, folder, [layer], workers=0, reader=read_frame, progress=progress)
    return atlas.images


def cached_image(engine: Engine, layer: str, channel: int, *, progress: Progress) -> np.ndarray | None:
    """Runs as a job (it reads the cache folder): the stored optimised image of a channel, or None."""
    found = load_cached(engine, plan(engine, layer, channel))
    return None if found is None else found.image


def optimised_image(engine: Engine, layer: str, channel: int, *, progress: Progress, partial) -> np.ndarray:
    """Runs as a job: the Lucid-style image that maximises the channel (cached for next time), handing a
    preview on every few steps."""
    request = plan(engine, layer, channel)
    result = dream(
        engine, request, progress=progress, preview_every=PREVIEW_EVERY, on_preview=lambda _step, image: partial(image)
    )
    return result.image


class UnitPane(Pane):
    """The selected unit explained: its top images from a mined folder with their deconvolutions, and an
    image optimised to excite it (drawn by the unit controller, not from the live frames)."""

    def __init__(self, state, spec: None, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, None, services, parent)
        self.view = UnitView()
        self.view.title.hide()  # the dock's title says which unit
        self.view.title_changed.connect(lambda text: self.set_title(f"{text} (d optimises an image for it)"))
        self.setLayout(column(self.view))
        self.set_title("unit (d optimises an image for it)")
        self.controller = UnitController(self.view, state, services)


class UnitController:
    """Drives the unit pane `view` for the unit `state` selects, running its work in the background on the
    model running now; a crop clicked opens its image; errors go to the status line and what must stay seen
    to the notices."""

    def __init__(self, view: UnitView, state, services: PaneServices):
        self.view, self.state, self.services = view, state, services
        self.runner, self.engine, self.notice = services.runner, services.engine, services.notice
        self._optimising: Job | None = None
        self.refresh_pending = False
        for event in (state.events.layer, state.events.channel, state.events.model):
            event.connect(lambda *_: self.schedule_refresh())
        self.view.optimise_requested.connect(self.optimise)
        self.view.cancel_requested.connect(self.cancel)
        self.view.crop_clicked.connect(self._open_crop)
        self.view.folder_chosen.connect(lambda folder: self.schedule_refresh())
        self._entries: list = []

    def _unit(self) -> tuple[Engine, str, int] | None:
        engine = self.engine()
        if engine is None or not self.state.layer:
            return None
        return engine, self.state.layer, self.state.channel

    def schedule_refresh(self) -> None:
        if not self.refresh_pending:  # once per turn of the event loop, after the whole change
            self.refresh_pending = True
            QTimer.singleShot(0, self.refresh)

    def refresh(self) -> None:
        """Show what is known about the selected unit: its cached optimised image, if any. Nothing is looked up
        while the pane is out of sight (it refreshes when shown)."""
        self.refresh_pending = False
        unit = self._unit()
        if unit is None or self.runner.closed or not self.view.isVisible():
            return
        engine, layer, channel = unit
        self.view.set_title(f"unit {engine.layer(layer).name}:{channel}")
        self.view.set_optimised(None)
        key = (layer, channel)
        job = self.runner.submit(
            "looking up the optimised image", cached_image, engine, layer, channel, supersede="unit image"
        )
        job.succeeded.connect(lambda image: self._show(key, image))
        job.failed.connect(lambda message: self.view.optimised.setToolTip(message))
        folder = self.view.chosen_folder()
        atlas = self.runner.submit(
            "the unit's top images", atlas_of_unit, engine, layer, channel, folder, supersede="unit atlas"
        )
        atlas.succeeded.connect(lambda found: self._show_atlas(key, found))
        atlas.failed.connect(self._show_error)

    def _show_atlas(self, key: tuple[str, int], found: dict) -> None:
        if not self._current(key):
            return
        self.view.set_folders(found["folders"], found["folder"])
        self._entries = found.get("entries", [])
        if "mosaics" in found:
            mosaics = found["mosaics"]
            note = f"top {len(self._entries)} of {found['images']} images in {found['folder']} (click one to open it)"
            self.view.set_atlas(mosaics.crops, mosaics.gradients, note, method=mosaics.method)
        else:
            self.view.set_atlas(None, None, "no folder mined for this layer: File > Mine a folder...")

    def _open_crop(self, index: int) -> None:
        if index < len(self._entries):
            self.services.open_source(str(self._entries[index].path))

    def mine(self, folder: str) -> None:
        """Mines the selected layer's top images in a folder in the background (the live view goes on)."""
        unit = self._unit()
        if unit is None:
            return
        engine, layer, _ = unit
        job = self.runner.submit(f"mining {folder}", mine_folder, engine, folder, layer)
        job.succeeded.connect(lambda count: self.services.message(f"mined {count} images in {folder}", 8000))
        job.succeeded.connect(lambda _count: self.schedule_refresh())
        job.failed.connect(self.notice)
        job.cancelled.connect(lambda: self.services.message("mining cancelled; it resumes from there", 6000))

    def _current(self, key: tuple[str, int]) -> bool:
        return key == (self.state.layer, self.state.channel)

    def _show(self, key: tuple[str, int], image: np.ndarray | None) -> None:
        if image is not None and self._current(key):
            self.view.set_optimised(image)

    def optimise(self) -> None:
        unit = self._unit()
        if unit is None or self._optimising is not None:
            return
        engine, layer, channel = unit
        key = (layer, channel)
        job = self.runner.submit(
            f"optimising {engine.layer(layer).name}:{channel}", optimised_image, engine, layer, channel, partial=True
        )
        self._optimising = job
        self.view.set_running(True)
        job.partial.connect(lambda image: self._show(key, image))
        job.progressed.connect(lambda _what, done, total: self.view.set_progress(done, total))
        job.succeeded.connect(lambda image: self._show(key, image))
        job.failed.connect(self._show_error)
        job.cancelled.connect(lambda: self.services.message("optimisation cancelled", 4000))
        job.ended.connect(self._ended)

    def _show_error(self, message: str) -> None:
        self.services.message(message, 10000)

    def _ended(self) -> None:
        self._optimising = None
        self.view.set_running(False)

    def cancel(self) -> None:
        if self._optimising is not None:
            self._optimising.cancel()
