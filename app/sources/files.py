"""Frames from files: one image, video or tensor file, the images of a folder, a video played at its
own rate and images stepped through (OpenCV, no Qt).

Every failure is an `InputError` whose message names the file and what to do; nothing here raises
an OpenCV error at a user. Images are read by `livevis.models.data.images` (EXIF orientation, transparency,
16-bit, huge JPEGs), videos by `livevis.models.data.videos`: the readers mining and the datasets use too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livevis.app.sources.base import OnFailure
from livevis.models.data.images import IMAGE_SUFFIXES, check_regular_file, not_a_file, read_image
from livevis.models.data.tensors import TENSOR_SUFFIXES, is_tensor_path, read_tensor
from livevis.models.data.videos import VIDEO_SUFFIXES, is_video_path, open_video, read_video_frame
from livevis.models.errors import InputError


def read_frame(path: str | Path, index: int = 0) -> np.ndarray:
    """An image file, or frame `index` of a video file, chosen by suffix (images first otherwise), or the
    current frame of a stream URL. Named pipes, sockets and devices are refused before they are opened
    (reading one would block)."""
    from livevis.app.sources.network import display_url, is_stream_url, read_stream_frame

    if is_stream_url(path):
        if index != 0:
            raise InputError(f"{display_url(path)} is a live stream: it has no frame {index} (--frame is for videos)")
        return read_stream_frame(path)
    path = check_regular_file(path)
    if is_tensor_path(path):
        if index != 0:
            raise InputError(f"{path} is a tensor input: it has no frame {index} (--frame is for videos)")
        return read_tensor(path)
    if is_video_path(path):
        return read_video_frame(path, index)
    if path.suffix.lower() in IMAGE_SUFFIXES and index != 0:
        raise InputError(f"{path} is an image: it has no frame {index} (--frame is for videos)")
    if path.suffix.lower() in IMAGE_SUFFIXES or index == 0:
        try:
            return read_image(path)
        except InputError:
            if path.suffix.lower() in IMAGE_SUFFIXES or not path.is_file():
                raise
    return read_video_frame(path, index)


def read_entry(entry) -> np.ndarray:
    """A mined image (an atlas entry: a file, or a frame of a video) as the live view reads files."""
    return read_frame(entry.path, entry.frame or 0)


class SourceGone(InputError):
    """The folder or file being shown was moved or deleted."""


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str
    """Why it is not shown, e.g. 'a named pipe (FIFO)', 'not an image (.txt)'."""

    def __str__(self) -> str:
        return f"{self.path.name} ({self.reason})"


@dataclass(frozen=True)
class FolderImages:
    """A folder's readable images in name order, and what else it holds that will not be shown."""

    images: list[Path]
    skipped: list[SkippedFile]

    def skipped_summary(self, limit: int = 10) -> str:
        """One line for a status bar or the end of a run: 'skipped 2 files: a.txt (not an image (.txt)), ...'."""
        if not self.skipped:
            return ""
        names = ", ".join(str(s) for s in self.skipped[:limit])
        more = f" and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        return f"skipped {len(self.skipped)} file{'s' if len(self.skipped) != 1 else ''}: {names}{more}"


def scan_folder(folder: str | Path) -> FolderImages:
    """The images of a folder (not its sub-folders) and every other entry, each with why it is skipped:
    other suffixes, videos, sub-folders, named pipes and devices (never opened: reading one blocks),
    broken links. Hidden entries (.DS_Store, ._photo.jpg) are left out of both."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    images, skipped = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        problem = not_a_file(path)
        suffix = path.suffix.lower()
        if problem == "a folder":
            skipped.append(SkippedFile(path, "a sub-folder; its images are not shown"))
        elif problem is not None:
            skipped.append(SkippedFile(path, problem))
        elif suffix in IMAGE_SUFFIXES or suffix in TENSOR_SUFFIXES:
            images.append(path)
        elif suffix in VIDEO_SUFFIXES:
            skipped.append(SkippedFile(path, "a video; open it on its own"))
        else:
            skipped.append(SkippedFile(path, f"not an image ({suffix or 'no suffix'})"))
    if not images:
        also = f"; {FolderImages(images, skipped).skipped_summary()}" if skipped else ""
        raise InputError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}){also}")
    return FolderImages(images, skipped)


def list_images(folder: str | Path) -> list[Path]:
    """The images of a folder in name order; `scan_folder` also says which files were skipped and why."""
    return scan_folder(folder).images


class VideoFileSource:
    """A video file played at its own frame rate, looping; slower when the model cannot keep up
    (a file, unlike a camera, can wait, so no frame is decoded only to be dropped)."""

    paced_by_consumer = True
    on_failure = OnFailure.STOP

    def __init__(self, path: Path):
        self.path = path
        self.label = path.name
        self._capture = open_video(path)
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.interval = 1.0 / fps if 1 <= fps <= 1000 else 1.0 / 25
        self._produced = False

    def read(self) -> np.ndarray:
        ok, frame = self._capture.read()
        if not ok:
            if not self._produced and int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 0:
                raise InputError(f"{self.path} has no frames (an empty video)")
            if not self._produced:
                raise InputError(f"{self.path}: no frame could be decoded")
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
            if not ok:
                raise InputError(f"{self.path}: cannot rewind this video")
        self._produced = True
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)  # in place: the decoder's array is ours

    def wait_s(self) -> float:
        return self.interval

    def close(self) -> None:
        self._capture.release()


class ImageListSource:
    """Image files shown one at a time (a slideshow stepped by keys); a bad file is reported and skipped."""

    on_failure = OnFailure.SKIP
    paced_by_consumer = False

    def __init__(self, paths: list[Path], start: int = 0, skipped: list[SkippedFile] | None = None):
        if not paths:
            raise InputError("no image files to show")
        self.paths = paths
        self.position = start % len(paths)
        self.skipped = list(skipped or [])
        """What the folder held besides images, for the status bar (`skipped_summary`)."""
        self._pending = True

    @property
    def skipped_summary(self) -> str:
        """'skipped 2 files: notes.txt (not an image (.txt)), ...', or '' when nothing was skipped."""
        return FolderImages(self.paths, self.skipped).skipped_summary()

    @property
    def label(self) -> str:
        return f"{self.paths[self.position].name} ({self.position + 1}/{len(self.paths)})"

    def step(self, delta: int) -> None:
        self.position = (self.position + delta) % len(self.paths)
        self._pending = True

    def read(self) -> np.ndarray | None:
        """The current image once after each step; None until the next step."""
        if not self._pending:
            return None
        self._pending = False
        path = self.paths[self.position]
        if not path.parent.exists():
            raise SourceGone(f"{path.parent} is gone (moved or deleted); open another source")
        return read_tensor(path) if is_tensor_path(path) else read_image(path)

    def wait_s(self) -> float:
        return 0.05

    def close(self) -> None:
        pass
