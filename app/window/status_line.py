"""The status bar: source, model, layer:channel, rate, and the progress of background jobs with Cancel."""

from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from livevis.app.live.jobs import Job
from livevis.app.live.model_loader import ModelInfo
from livevis.app.live.stats import LiveStats


class StatusLine:
    def __init__(self, bar: QStatusBar):
        self.bar = bar
        self.source = QLabel("no source")
        self.model = QLabel("no model")
        self.layer = QLabel("-")
        self.rate = QLabel("-")
        self.job_progress = QProgressBar()
        self.job_progress.setFixedWidth(220)
        self.job_cancel = QPushButton("Cancel")
        self.job_cancel.clicked.connect(self._cancel_job)
        for widget in (self.job_progress, self.job_cancel, self.source, self.model, self.layer, self.rate):
            bar.addPermanentWidget(widget)
        self.rate.setMinimumWidth(self.rate.fontMetrics().horizontalAdvance("0" * 48))
        self.layer.setMinimumWidth(self.layer.fontMetrics().horizontalAdvance("0" * 16))
        self._job: Job | None = None
        self._show_job(False)

    def message(self, text: str, ms: int = 10000) -> None:
        self.bar.showMessage(text, ms)

    def show_model(self, info: ModelInfo | None, loading: str = "") -> None:
        if loading:
            self.model.setText(loading)
        elif info is None:
            self.model.setText("no model")
        else:
            state = info.weights if info.trained else "UNTRAINED"
            self.model.setText(f"{info.name} [{state}] on {info.device}")

    def show_rate(
        self, stats: LiveStats, dropped: int, frozen: bool, still: bool, recording_s: float | None = None
    ) -> None:
        """The rate while frames flow; on a frozen frame or a still image, that nothing is being processed;
        while recording, for how long."""
        recording = "" if recording_s is None else f"  \u25cf REC {int(recording_s) // 60}:{int(recording_s) % 60:02d}"
        if frozen or still:
            self.rate.setText(("FROZEN" if frozen else "still image") + f": no frames processed{recording}")
            return
        latency = stats.latencies_ms[-1] if stats.latencies_ms else 0.0
        self.rate.setText(f"{stats.fps():.1f} fps  latency {latency:.0f} ms  dropped {dropped}{recording}")

    # --- background jobs ---
    def follow_job(self, job: Job) -> None:
        """Shows the newest job that reports progress, with a Cancel button, until it ends."""
        self._job = job
        job.progressed.connect(lambda what, done, total, job=job: self._on_progress(job, what, done, total))
        job.ended.connect(lambda job=job: self._on_ended(job))

    def _on_progress(self, job: Job, what: str, done: int, total: int) -> None:
        if job is not self._job:
            return
        self._show_job(True)
        self.job_progress.setMaximum(max(total, 0))
        self.job_progress.setValue(min(done, total) if total else 0)
        self.job_progress.setFormat(f"{what}: %p%" if total else what)

    def _on_ended(self, job: Job) -> None:
        if job is self._job:
            self._job = None
            self._show_job(False)

    def _show_job(self, visible: bool) -> None:
        self.job_progress.setVisible(visible)
        self.job_cancel.setVisible(visible)

    def _cancel_job(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.message(f"cancelling {self._job.title}...", 3000)
