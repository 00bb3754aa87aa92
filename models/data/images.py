"""Image files as RGB uint8, as a photo viewer would show them (OpenCV; no Qt, no torch).

One reader for the app, the command line and the embeddings datasets, so that every view of a file agrees:
EXIF orientation is applied, transparent pixels are composited over a neutral background, 16-bit,
grey and palette images come out as 8-bit RGB, and a huge JPEG is decoded at a reduced scale.
Non-regular files (named pipes, sockets, devices) are refused before they are opened: reading one blocks.
"""

from __future__ import annotations

import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm"}
)
"""What livevis reads as an image: the one list for folders, the Open dialog and the datasets."""
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
"""What livevis opens as a video (OpenCV's FFmpeg): the one list for sources, folders and mining."""

MAX_SIDE = 4096
"""Default cap on the longer side of a read image: several times the largest view (the model sees
224-512 px, the windows show at most a screen), and a 12,000 px JPEG decodes in a fraction of the memory."""

BACKGROUND = 128
"""Mid grey: what transparent pixels become, neither the black nor the white a network may read as content."""

_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}

_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
"""OpenCV 4.10 and later: the JPEG decoder writes RGB itself (libjpeg-turbo's own output order)."""

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_ORIENTATION_TAG = 0x0112


def not_a_file(path: str | Path) -> str | None:
    """Why `path` cannot be read as a file ('a named pipe (FIFO)', 'a folder', ...), found without
    opening it; None for a regular file or a link to one."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a link to a file that is not there" if path.is_symlink() else "no such file"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def check_regular_file(path: str | Path) -> Path:
    """The path, if it names a regular file (or a link to one); otherwise InputError, without opening
    it: opening a named pipe blocks until someone writes to it, and a device may never end."""
    path = Path(path)
    problem = not_a_file(path)
    if problem is None:
        return path
    if problem == "no such file":
        raise InputError(f"{path}: no such file")
    if problem.startswith("cannot"):
        raise InputError(f"{path}: {problem}")
    if problem == "a folder":
        raise InputError(f"{path} is a folder; give an image or video file")
    raise InputError(f"{path} is {problem}, not a file; livevis reads image and video files only")


@dataclass(frozen=True)
class ImageHeader:
    """What the first bytes of a file tell without decoding it."""

    width: int | None = None
    height: int | None = None
    orientation: int = 1
    """EXIF orientation, 1-8 (1: as stored)."""
    is_jpeg: bool = False


def read_image(path: str | Path, *, max_side: int | None = MAX_SIDE, background: int = BACKGROUND) -> np.ndarray:
    """An image file as RGB uint8, turned upright by its EXIF orientation.

    `max_side` caps the longer side (None: full size); a JPEG larger than that is decoded at 1/2, 1/4
    or 1/8 scale by the decoder itself, so its full-size pixels never exist in memory. Transparent pixels
    are composited over `background`, a grey level 0-255 (mid grey 128 by default). Missing, empty,
    truncated, non-regular and non-image files raise InputError.
    """
    path = check_regular_file(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, str(path), max_side=max_side, background=background)


def decode_image(
    data: np.ndarray, name: str, *, max_side: int | None = MAX_SIDE, background: int = BACKGROUND
) -> np.ndarray:
    """The bytes of an image file as RGB uint8 (see `read_image`); `name` is what errors call it."""
    if data.size == 0:
        raise InputError(f"{name} is empty (0 bytes)")
    if not 0 <= background <= 255:
        raise InputError(f"background must be a grey level 0-255, got {background}")
    if _is_truncated_jpeg(data):
        raise InputError(f"{name} is a truncated JPEG (the file ends before the image does)")
    header = read_header(data)
    decoded_rgb = False
    if header.is_jpeg:
        factor = _reduction(header, max_side)
        if factor == 1 and _IMREAD_RGB is not None:  # the decoder writes RGB itself: one pass less, same pixels
            decoded, decoded_rgb = cv2.imdecode(data, _IMREAD_RGB | cv2.IMREAD_IGNORE_ORIENTATION), True
        else:
            flags = {
                1: cv2.IMREAD_COLOR,
                2: cv2.IMREAD_REDUCED_COLOR_2,
                4: cv2.IMREAD_REDUCED_COLOR_4,
                8: cv2.IMREAD_REDUCED_COLOR_8,
            }[factor]
            decoded = cv2.imdecode(data, flags | cv2.IMREAD_IGNORE_ORIENTATION)
    else:
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # keeps alpha and 16 bits; never rotates
    if decoded is None or decoded.size == 0:
        if data[:4].tobytes() == b"GIF8":
            raise InputError(f"{name}: this OpenCV ({cv2.__version__}) cannot decode this GIF (4.11 and later can)")
        raise InputError(f"{name} is not an image OpenCV can decode (corrupt, truncated or another format)")
    rgb = decoded if decoded_rgb else _to_rgb(_composite(_to_uint8(decoded), background))
    rgb = _orient(rgb, header.orientation)
    if max_side is not None and max(rgb.shape[:2]) > max_side:
        scale = max_side / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb


def _reduction(header: ImageHeader, max_side: int | None) -> int:
    """The smallest JPEG scale-down (1, 2, 4 or 8) that brings the longer side within max_side."""
    if max_side is None or not header.width or not header.height:
        return 1
    longer = max(header.width, header.height)
    for factor in (1, 2, 4):
        if -(-longer // factor) <= max_side:
            return factor
    return 8


def _is_truncated_jpeg(data: np.ndarray) -> bool:
    """OpenCV decodes a cut-off JPEG with a grey bottom and a warning; its end-of-image marker says."""
    if data.size < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return False
    return b"\xff\xd9" not in data[-1024:].tobytes()


def _to_uint8(decoded: np.ndarray) -> np.ndarray:
    """16-bit images scaled by 1/257 (full range to full range, brightness kept); float images stretched."""
    if decoded.dtype == np.uint8:
        return decoded
    if decoded.dtype == np.uint16:
        return ((decoded.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if decoded.ndim == 3 and decoded.shape[2] == 4 and np.issubdtype(decoded.dtype, np.floating):
        colour = cv2.normalize(decoded[..., :3], None, 0, 255, cv2.NORM_MINMAX)
        alpha = np.clip(decoded[..., 3:] * 255, 0, 255)
        return np.concatenate([colour, alpha], axis=2).round().astype(np.uint8)
    return cv2.normalize(decoded, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _composite(decoded: np.ndarray, background: int) -> np.ndarray:
    """BGR(A) or grey(+alpha) uint8 to BGR or grey without alpha: colour * alpha + background * (1 - alpha)."""
    if decoded.ndim == 2 or decoded.shape[2] in (1, 3):
        return decoded
    if decoded.shape[2] == 2:  # grey + alpha
        colour, alpha = decoded[..., :1], decoded[..., 1:]
    else:
        colour, alpha = decoded[..., :3], decoded[..., 3:]
    if alpha.min() == 255:
        return np.ascontiguousarray(colour)
    a = alpha.astype(np.uint16)
    mixed = (colour.astype(np.uint16) * a + np.uint16(background) * (255 - a) + 127) // 255
    return mixed.astype(np.uint8)


def _to_rgb(decoded: np.ndarray) -> np.ndarray:
    if decoded.ndim == 2 or decoded.shape[2] == 1:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB, dst=decoded)  # in place: the array is ours


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels to upright ones, for EXIF orientations 2-8 (the TIFF/EXIF definitions)."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(image), -1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def read_header(data: np.ndarray | bytes) -> ImageHeader:
    """Size and EXIF orientation from a JPEG's markers, a PNG's chunks or a WebP's RIFF chunks; a default
    header (size unknown, upright) for anything else or anything malformed: this never raises. (OpenCV's
    TIFF decoder turns TIFFs upright itself, even with IMREAD_UNCHANGED.)"""
    raw = data if isinstance(data, bytes) else memoryview(np.ascontiguousarray(data)).cast("B")
    try:
        if raw[:2] == b"\xff\xd8":
            return _jpeg_header(raw)
        if raw[:8] == b"\x89PNG\r\n\x1a\n":
            return _png_header(raw)
        if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
            return _webp_header(raw)
    except (struct.error, IndexError, ValueError):
        pass
    return ImageHeader()


def _jpeg_header(raw) -> ImageHeader:
    width = height = None
    orientation, pos = 1, 2
    while pos + 4 <= len(raw) and width is None:
        if raw[pos] != 0xFF:
            break
        marker = raw[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack(">H", raw[pos + 2 : pos + 4])[0]
        segment = raw[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and bytes(segment[:6]) == b"Exif\x00\x00":
            orientation = _exif_orientation(bytes(segment[6:]))
        elif marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", segment[1:5])
        elif marker == 0xDA:  # start of scan: no SOF before it
            break
        pos += 2 + length
    return ImageHeader(width, height, orientation, is_jpeg=True)


def _png_header(raw) -> ImageHeader:
    width, height = struct.unpack(">II", raw[16:24])
    orientation, pos = 1, 8
    while pos + 8 <= len(raw):
        length = struct.unpack(">I", raw[pos : pos + 4])[0]
        kind = bytes(raw[pos + 4 : pos + 8])
        if kind == b"eXIf":
            orientation = _exif_orientation(bytes(raw[pos + 8 : pos + 8 + length]))
            break
        if kind == b"IEND":
            break
        pos += 12 + length
    return ImageHeader(width, height, orientation)


def _webp_header(raw) -> ImageHeader:
    pos = 12
    while pos + 8 <= len(raw):
        kind = bytes(raw[pos : pos + 4])
        length = struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        if kind == b"EXIF":
            payload = bytes(raw[pos + 8 : pos + 8 + length]).removeprefix(b"Exif\x00\x00")
            return ImageHeader(orientation=_exif_orientation(payload))
        pos += 8 + length + (length & 1)
    return ImageHeader()


def _exif_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of IFD0 in a TIFF-structured EXIF block; 1 when absent or out of range."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for entry in range(count):
        at = ifd + 2 + 12 * entry
        tag, kind = struct.unpack(order + "HH", tiff[at : at + 4])
        if tag == _ORIENTATION_TAG and kind == 3:  # SHORT
            (value,) = struct.unpack(order + "H", tiff[at + 8 : at + 10])
            return value if 1 <= value <= 8 else 1
    return 1
