"""Frame sources where no camera exists: a clear error, and nothing of OpenCV's on stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from livevis.app.sources.cameras import CameraSource
from livevis.models.errors import InputError

ABSENT = 63  # no machine this runs on has 64 cameras


def test_a_camera_that_is_not_there_is_named_in_the_error():
    with pytest.raises(InputError, match=f"no camera at index {ABSENT}"):
        CameraSource(ABSENT)


def test_looking_for_cameras_prints_nothing_on_stderr():
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    probe = (
        "from livevis.app.sources.cameras import CameraSource, probe_cameras\n"
        f"assert {ABSENT} not in probe_cameras({ABSENT + 1})\n"
        "try:\n"
        f"    CameraSource({ABSENT})\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"no camera at index {ABSENT}" in run.stdout
    assert run.stderr == ""
