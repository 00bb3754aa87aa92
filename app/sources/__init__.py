"""Where frames come from, without Qt: files and folders, cameras, network streams, the drawing pad and
synthetic frames. Each live source is a `FrameSource` (see `base`); `open_source` picks one by its spec."""

from __future__ import annotations

from pathlib import Path

from livevis.app.sources.cameras import CameraMode, CameraSource
from livevis.app.sources.files import ImageListSource, VideoFileSource, scan_folder
from livevis.app.sources.network import FrameDemand, StreamSource, is_stream_url
from livevis.models.data.images import VIDEO_SUFFIXES, check_regular_file
from livevis.models.data.videos import is_video_path
from livevis.models.errors import InputError


def open_source(
    spec: str | list[str],
    mirror: bool = True,
    *,
    camera_mode: CameraMode | None = None,
    demand: FrameDemand | None = None,
):
    """`0`-`9`: a camera (at `camera_mode`); a URL: a network stream (decoding the frames `demand` wants);
    a folder: its images; a video file; one or more image files."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    if len(specs) == 1 and specs[0].isdigit():
        return CameraSource(int(specs[0]), mirror, camera_mode)
    if len(specs) == 1 and is_stream_url(specs[0]):
        return StreamSource(specs[0], demand)
    if any(is_stream_url(s) for s in specs):
        raise InputError("open one stream URL at a time, on its own")
    paths = [Path(s).expanduser() for s in specs]
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if not (len(paths) == 1 and path.is_dir()):
            check_regular_file(path)
    if len(paths) == 1 and paths[0].is_dir():
        folder = scan_folder(paths[0])
        return ImageListSource(folder.images, skipped=folder.skipped)
    if len(paths) == 1 and is_video_path(paths[0]):
        return VideoFileSource(paths[0])
    videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        raise InputError(f"open one video at a time ({videos[0].name} was given with other files)")
    return ImageListSource(paths)
