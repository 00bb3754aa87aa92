"""Image files as RGB uint8, as a photo viewer would show them (OpenCV; no Qt, no torch).

One reader for the app, the command line and the embeddings datasets, so that every view of a file agrees:
EXIF orientation is applied, transparent pixels are composited over a neutral background, 16-bit,
grey and palette images come out as 8-bit RGB, and a huge JPEG is decoded at a reduced scale.
Non-regular files (named pipes, sockets, devices) are refused before they are opened: reading one blocks.
An image whose header says it would take more than `MAX_DECODE_BYTES` to decode (a 100 KB PNG can hold
10,000 x 10,000 pixels) is refused before it is decoded.
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

MAX_DECODE_BYTES = 320 * 2**20
"""What reading one image may take beyond what is already in memory (`decoding_cost`, from its header): 100
megapixels of 8-bit grey fit, about 45 of 8-bit colour, 18 of 16-bit colour with transparency; a JPEG of any
size fits (it is decoded at a reduced scale)."""

_STRIP_ROWS = 256
"""Rows converted at a time, so that a conversion's temporaries stay small beside the image."""

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
    channels: int = 3
    """Channels OpenCV decodes it to, at most (4 where it may have transparency)."""
    sample_bytes: int = 1
    """Bytes per channel decoded: 2 for 16-bit images, 4 or 8 for floating point."""
    kind: str = ""
    """The format's name, for messages: PNG, WebP, TIFF, ..."""


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
    _check_decoding_cost(header, data.size, name, max_side)
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
    # each step replaces the image, so that at most two full-size copies live at once; it is made smaller
    # before it becomes three channels or turns
    image = decoded
    del decoded
    if not decoded_rgb:
        image = _to_uint8(image)
        image = _composite(image, background)
    if max_side is not None and max(image.shape[:2]) > max_side:
        scale = max_side / max(image.shape[:2])
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if not decoded_rgb:
        image = _to_rgb(image)
    return _orient(image, header.orientation)


def decoding_cost(header: ImageHeader, file_bytes: int, max_side: int | None = MAX_SIDE) -> int | None:
    """Bytes that reading an image of this header takes at its peak: its file, twice its decoded pixels
    (OpenCV's decoders fill a buffer of their own before the image; the 8-bit and opaque copies made after
    take less), and the RGB result (with its turned copy); None where the header does not give the size."""
    if not header.width or not header.height:
        return None
    width, height = header.width, header.height
    if header.is_jpeg:  # decoded at a reduced scale
        factor = _reduction(header, max_side)
        width, height = -(-width // factor), -(-height // factor)
    decoded = width * height * header.channels * header.sample_bytes
    longer = max(width, height)
    scale = 1.0 if max_side is None or longer <= max_side else max_side / longer
    result = round(width * scale) * round(height * scale) * 3 * (2 if header.orientation != 1 else 1)
    return file_bytes + 2 * decoded + result


def _check_decoding_cost(header: ImageHeader, file_bytes: int, name: str, max_side: int | None) -> None:
    cost = decoding_cost(header, file_bytes, max_side)
    if cost is not None and cost > MAX_DECODE_BYTES:
        depth = f"{8 * header.sample_bytes}-bit "
        raise InputError(
            f"{name} is a {header.width} x {header.height} {depth}{header.kind or 'image'}: decoding it would take "
            f"about {cost / 2**20:.0f} MB, more than the {MAX_DECODE_BYTES // 2**20} MB livevis gives one image; "
            f"save it smaller (livevis shows at most {MAX_SIDE} pixels a side)"
        )


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
        scaled = np.empty(decoded.shape, np.uint8)
        for top in range(0, len(decoded), _STRIP_ROWS):
            rows = slice(top, top + _STRIP_ROWS)
            scaled[rows] = (decoded[rows].astype(np.uint32) * 255 + 32767) // 65535
        return scaled
    if decoded.ndim == 3 and decoded.shape[2] == 4 and np.issubdtype(decoded.dtype, np.floating):
        colour = cv2.normalize(decoded[..., :3], None, 0, 255, cv2.NORM_MINMAX)
        alpha = np.clip(decoded[..., 3:] * 255, 0, 255)
        return np.concatenate([colour, alpha], axis=2).round().astype(np.uint8)
    return cv2.normalize(decoded, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)


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
    mixed = np.empty(colour.shape, np.uint8)
    for top in range(0, len(decoded), _STRIP_ROWS):
        rows = slice(top, top + _STRIP_ROWS)
        a = alpha[rows].astype(np.uint16)
        mixed[rows] = (colour[rows].astype(np.uint16) * a + np.uint16(background) * (255 - a) + 127) // 255
    return mixed


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
    """Size, channels, depth and EXIF orientation from the first bytes of a JPEG, PNG, WebP, TIFF, GIF, BMP
    or PNM file; a default header (size unknown, upright) for anything else or anything malformed: this never
    raises. (OpenCV's TIFF decoder turns TIFFs upright itself, even with IMREAD_UNCHANGED.)"""
    raw = data if isinstance(data, bytes) else memoryview(np.ascontiguousarray(data)).cast("B")
    try:
        if raw[:2] == b"\xff\xd8":
            return _jpeg_header(raw)
        if raw[:8] == b"\x89PNG\r\n\x1a\n":
            return _png_header(raw)
        if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
            return _webp_header(raw)
        if raw[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_header(raw)
        if raw[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", raw[6:10])
            return ImageHeader(width, height, channels=4, kind="GIF")
        if raw[:2] == b"BM":
            return _bmp_header(raw)
        if raw[:1] == b"P" and raw[1:2] in (b"1", b"2", b"3", b"4", b"5", b"6"):
            return _pnm_header(raw)
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
    return ImageHeader(width, height, orientation, is_jpeg=True, kind="JPEG")


_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}
"""Channels OpenCV decodes each PNG colour type to (grey and alpha becomes BGRA)."""


def _png_header(raw) -> ImageHeader:
    width, height, depth, colour = struct.unpack(">IIBB", raw[16:26])
    channels = _PNG_CHANNELS.get(colour, 4)
    orientation, pos = 1, 8
    while pos + 8 <= len(raw):
        length = struct.unpack(">I", raw[pos : pos + 4])[0]
        kind = bytes(raw[pos + 4 : pos + 8])
        if kind == b"eXIf":
            orientation = _exif_orientation(bytes(raw[pos + 8 : pos + 8 + length]))
        elif kind == b"tRNS":  # a transparent colour: decoded with an alpha channel
            channels = 4
        elif kind == b"IEND":
            break
        pos += 12 + length
    return ImageHeader(width, height, orientation, channels=channels, sample_bytes=2 if depth == 16 else 1, kind="PNG")


def _webp_header(raw) -> ImageHeader:
    """The canvas from the first VP8X, VP8L or VP8 chunk; the orientation from an EXIF chunk."""
    width = height = None
    channels, orientation, pos = 3, 1, 12
    while pos + 8 <= len(raw):
        kind = bytes(raw[pos : pos + 4])
        length = struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        payload = raw[pos + 8 : pos + 8 + min(length, 16)]
        if width is None and kind == b"VP8X":
            flags = payload[0]
            width = 1 + int.from_bytes(bytes(payload[4:7]), "little")
            height = 1 + int.from_bytes(bytes(payload[7:10]), "little")
            channels = 4 if flags & 0x10 else 3
        elif width is None and kind == b"VP8L" and payload[0] == 0x2F:
            (bits,) = struct.unpack("<I", payload[1:5])
            width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            channels = 4 if bits >> 28 & 1 else 3
        elif width is None and kind == b"VP8 " and bytes(payload[3:6]) == b"\x9d\x01\x2a":
            w, h = struct.unpack("<HH", payload[6:10])
            width, height = w & 0x3FFF, h & 0x3FFF
        elif kind == b"EXIF":
            exif = bytes(raw[pos + 8 : pos + 8 + length]).removeprefix(b"Exif\x00\x00")
            orientation = _exif_orientation(exif)
        pos += 8 + length + (length & 1)
    return ImageHeader(width, height, orientation, channels=channels, kind="WebP")


_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_BITS, _TIFF_PHOTOMETRIC, _TIFF_SAMPLES = 256, 257, 258, 262, 277
_TIFF_PALETTE = 3


def _tiff_header(raw) -> ImageHeader:
    """The first image's size, samples per pixel and bits per sample, from its first IFD."""
    order = "<" if raw[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", raw[4:8])
    (count,) = struct.unpack(order + "H", raw[ifd : ifd + 2])
    tags: dict[int, int] = {}
    for entry in range(count):
        at = ifd + 2 + 12 * entry
        tag, kind, values = struct.unpack(order + "HHI", raw[at : at + 8])
        if kind == 3:  # SHORT: the first value, inline where it fits, else at the offset
            where = at + 8 if values <= 2 else struct.unpack(order + "I", raw[at + 8 : at + 12])[0]
            (tags[tag],) = struct.unpack(order + "H", raw[where : where + 2])
        elif kind == 4:  # LONG
            where = at + 8 if values <= 1 else struct.unpack(order + "I", raw[at + 8 : at + 12])[0]
            (tags[tag],) = struct.unpack(order + "I", raw[where : where + 4])
    if _TIFF_WIDTH not in tags or _TIFF_HEIGHT not in tags:
        return ImageHeader()
    samples = tags.get(_TIFF_SAMPLES, 1)
    channels = max(samples, 3 if tags.get(_TIFF_PHOTOMETRIC) == _TIFF_PALETTE else 1)
    sample_bytes = max(1, -(-tags.get(_TIFF_BITS, 8) // 8))
    return ImageHeader(tags[_TIFF_WIDTH], tags[_TIFF_HEIGHT], channels=channels, sample_bytes=sample_bytes, kind="TIFF")


def _bmp_header(raw) -> ImageHeader:
    (size,) = struct.unpack("<I", raw[14:18])
    if size == 12:  # OS/2's header
        width, height, _planes, bits = struct.unpack("<HHHH", raw[18:26])
    else:
        width, height, _planes, bits = struct.unpack("<iiHH", raw[18:30])
    return ImageHeader(abs(width), abs(height), channels=4 if bits == 32 else 3, kind="BMP")


def _pnm_header(raw) -> ImageHeader:
    """P1-P6: the width, the height and (but for bitmaps) the largest value, as words after the magic number,
    with comments from # to the end of a line."""
    text = bytes(raw[2:512]).split(b"\n")
    words = [word for line in text for word in line.split(b"#", 1)[0].split()]
    kind = raw[1:2]
    width, height = int(words[0]), int(words[1])
    largest = 1 if kind in (b"1", b"4") else int(words[2])
    channels = 3 if kind in (b"3", b"6") else 1
    return ImageHeader(width, height, channels=channels, sample_bytes=2 if largest > 255 else 1, kind="PNM")


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
