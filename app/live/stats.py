"""Counters for the status bar and for `--stats-json`: frames, fps, latency, stage times."""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from livevis.app.live.slot import LatestFrameSlot


class LiveStats:
    """Counters for the status bar and for `--stats-json`."""

    def __init__(self):
        self.started = time.perf_counter()
        self.first_display: float | None = None
        self.displayed = 0
        self.latencies_ms: deque[float] = deque(maxlen=2000)
        self.display_times: deque[float] = deque(maxlen=120)
        self.loop_lateness_ms: deque[float] = deque(maxlen=5000)
        self.grid_paint_ms: deque[float] = deque(maxlen=2000)
        self.stage_ms: dict[str, deque[float]] = {}
        self.model_ready_at = 0.0
        self.closed_at: float | None = None
        """time.time() when the window closed (wall clock, so that another process can compare)."""
        self.shutdown_ms: float | None = None
        """How long joining the threads and ending the jobs took at close."""
        self._last_sequence: int | None = None

    def add_latency(self, sequence: int, captured_at: float, now: float) -> None:
        """Capture-to-display latency, once per frame: redrawing the frame shown (another channel,
        frozen, a still image) is no new capture, and time spent waiting for a model to load is
        not the pipeline's."""
        if sequence != self._last_sequence:
            self._last_sequence = sequence
            self.latencies_ms.append((now - max(captured_at, self.model_ready_at)) * 1000.0)

    def fps(self) -> float:
        times = self.display_times
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    @staticmethod
    def _percentile(values, q: float) -> float | None:
        return float(np.percentile(list(values), q)) if values else None

    def as_dict(self, slot: LatestFrameSlot, processed: int, source_reconnects: int = 0) -> dict:
        elapsed = time.perf_counter() - self.started
        running = (self.display_times[-1] - self.first_display) if self.displayed > 1 else 0.0
        return {
            "frames_captured": slot.captured,
            "frames_processed": processed,
            "frames_displayed": self.displayed,
            "frames_dropped": slot.dropped,
            "source_reconnects": source_reconnects,
            "seconds": elapsed,
            "fps": (self.displayed - 1) / running if running > 0 else 0.0,
            "latency_ms_p50": self._percentile(self.latencies_ms, 50),
            "latency_ms_p95": self._percentile(self.latencies_ms, 95),
            "event_loop_latency_ms_p95": self._percentile(self.loop_lateness_ms, 95),
            "grid_paint_ms_p50": self._percentile(self.grid_paint_ms, 50),
            "grid_paint_ms_p95": self._percentile(self.grid_paint_ms, 95),
            "closed_at": self.closed_at,
            "shutdown_ms": self.shutdown_ms,
            "worker_stage_ms_p50": {stage: self._percentile(ms, 50) for stage, ms in self.stage_ms.items()},
        }

    def add_display(
        self, sequence: int, captured_at: float, now: float, timings_ms: dict[str, float], grid_paint_ms: float
    ) -> None:
        """One result shown: counts, rate, latency, the worker's stage times and the grid's paint time."""
        self.displayed += 1
        self.display_times.append(now)
        self.first_display = self.first_display or now
        self.add_latency(sequence, captured_at, now)
        self.add_stage_times(timings_ms)
        if grid_paint_ms:
            self.grid_paint_ms.append(grid_paint_ms)

    def add_stage_times(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stage_ms.setdefault(stage, deque(maxlen=2000)).append(ms)
