"""Files as users have them: named pipes, phone photos with EXIF orientation, transparent PNGs, GIFs,
huge JPEGs, empty videos, and model and weights files that make torch talk on stderr."""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from livevis.app.sources import open_source
from livevis.app.sources.files import VideoFileSource, list_images, read_frame, scan_folder
from livevis.models.data.datasets import image_folder
from livevis.models.data.images import IMAGE_SUFFIXES, read_header, read_image
from livevis.models.data.videos import read_video_frame
from livevis.models.errors import InputError

LIVEVIS = Path(sys.executable).parent / "livevis"


def finishes(call, timeout_s: float = 20.0):
    """Runs `call` in a daemon thread: a read that blocks on a named pipe fails the test instead of hanging it."""
    outcome = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), "the read blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def run_livevis(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LIVEVIS), *args], cwd=cwd, capture_output=True, text=True, timeout=180)


def save_with_orientation(rgb: np.ndarray, path: Path, orientation: int, **options) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, exif=exif.tobytes(), **options)
    return path


# 3. named pipes, sockets and devices


@pytest.fixture
def pipe(tmp_path) -> Path:
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)
    return path


def test_a_named_pipe_is_refused_before_it_is_opened(pipe, tmp_path):
    for read in (read_image, read_frame, read_video_frame, lambda p: open_source(str(p))):
        with pytest.raises(InputError, match=r"pipe\.jpg is a named pipe \(FIFO\), not a file"):
            finishes(lambda read=read: read(pipe))
    video_pipe = tmp_path / "pipe.mp4"
    os.mkfifo(video_pipe)
    with pytest.raises(InputError, match="named pipe"):
        finishes(lambda: VideoFileSource(video_pipe))
    with pytest.raises(InputError, match="is a character device, not a file"):
        finishes(lambda: read_frame("/dev/zero"))


def test_a_folder_skips_a_named_pipe_and_says_so(pipe, tmp_path, chelsea_path):
    (tmp_path / "cat.jpg").write_bytes(chelsea_path.read_bytes())
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "more").mkdir()
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    folder = finishes(lambda: scan_folder(tmp_path))
    assert folder.images == [tmp_path / "cat.jpg"] == list_images(tmp_path)
    assert [str(s) for s in folder.skipped] == [
        "clip.mp4 (a video; open it on its own)",
        "more (a sub-folder; its images are not shown)",
        "notes.txt (not an image (.txt))",
        "pipe.jpg (a named pipe (FIFO))",
    ]
    assert folder.skipped_summary(limit=2) == (
        "skipped 4 files: clip.mp4 (a video; open it on its own), more (a sub-folder; its images are not shown)"
        " and 2 more"
    )
    source = finishes(lambda: open_source(str(tmp_path)))  # what the window opens: it can say the same
    assert source.paths == folder.images and source.skipped_summary == folder.skipped_summary()


def test_a_folder_of_only_unreadable_entries_says_what_it_holds(pipe, tmp_path):
    with pytest.raises(InputError, match=r"holds no images .*; skipped 1 file: pipe\.jpg \(a named pipe \(FIFO\)\)"):
        scan_folder(tmp_path)


# 5. EXIF orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_jpeg_is_turned_upright_by_its_exif_orientation(tmp_path, photos, orientation):
    path = save_with_orientation(photos["chelsea"], tmp_path / "phone.jpg", orientation, quality=95)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    image = read_image(path)
    assert image.shape == expected.shape
    assert np.abs(image.astype(int) - expected).mean() < 2  # two JPEG decoders agree to rounding


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_jpeg_reads_as_pillow_decodes_it_pixel_for_pixel(tmp_path, photos, mode):
    """Colour, grey and CMYK JPEGs: the decoder's own RGB output (OpenCV 4.10+) or BGR turned RGB, the same
    libjpeg-turbo pixels as Pillow's, so the live view, `render` and the atlas read what a viewer shows."""
    path = tmp_path / f"{mode}.jpg"
    Image.fromarray(photos["chelsea"]).convert(mode).save(path, quality=90)
    expected = np.asarray(Image.open(path).convert("RGB"))
    image = read_image(path)
    assert image.dtype == np.uint8 and image.flags.c_contiguous
    if mode == "CMYK":  # Pillow and OpenCV invert Adobe's CMYK differently: close, not equal
        assert np.abs(image.astype(int) - expected).mean() < 3
    else:
        assert np.array_equal(image, expected)


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_png_and_webp_exif_orientation_is_honoured(tmp_path, photos, suffix):
    rgb = photos["chelsea"]
    path = save_with_orientation(rgb, tmp_path / f"phone{suffix}", 6, lossless=True)
    assert np.array_equal(read_image(path), np.rot90(rgb, -1))


def test_a_large_phone_photo_is_reduced_and_upright(tmp_path, photos):
    rgb = cv2.resize(photos["chelsea"], (1804, 1200))
    path = save_with_orientation(rgb, tmp_path / "phone.jpg", 6, quality=90)
    image = read_image(path, max_side=500)
    assert image.shape == (451, 300, 3)  # decoded at 1/4, the first scale within 500 px, then turned
    upright = cv2.resize(np.rot90(rgb, -1), (300, 451), interpolation=cv2.INTER_AREA)
    assert np.abs(image.astype(int) - upright).mean() < 4


def test_the_embeddings_folder_reads_images_as_the_app_shows_them(tmp_path, photos):
    """Upright, transparency over grey, GIFs included: the same reader as the app's."""
    photo = np.ascontiguousarray(photos["chelsea"][:, :300])  # square: the centre crop is the whole picture
    cutout = rgba_with_hidden_red(photo)
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        save_with_orientation(cutout, tmp_path / name / "phone.png", 6)
        Image.fromarray(photo).save(tmp_path / name / "still.gif")
    data, skipped = image_folder(tmp_path, 64)
    assert skipped == 0 and len(data) == 4
    shown = read_image(tmp_path / "cats" / "phone.png")
    assert (shown[:150] == 128).all()  # the transparent left half, turned to the top
    expected = cv2.resize(shown, (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(data.images[0].astype(int) - expected).mean() < 1  # via 256 px: rounding differs


# 6. transparency, 16 bits, palettes


def rgba_with_hidden_red(photo: np.ndarray) -> np.ndarray:
    """The photo on the right half; the left half fully transparent over pure red."""
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:, : photo.shape[1] // 2] = (255, 0, 0, 0)
    return rgba


def test_transparent_pixels_become_mid_grey_not_their_hidden_colour(tmp_path, photos):
    photo = photos["chelsea"]
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba_with_hidden_red(photo)).save(path)
    image = read_image(path)
    half = photo.shape[1] // 2
    assert (image[:, :half] == 128).all()
    assert np.array_equal(image[:, half:], photo[:, half:])
    assert (read_image(path, background=255)[:, :half] == 255).all()
    assert (read_frame(path)[:, :half] == 128).all()


def test_half_transparent_pixels_are_blended_over_the_background(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[...] = (255, 0, 0, 128)
    path = tmp_path / "half.png"
    Image.fromarray(rgba).save(path)
    assert read_image(path)[0, 0].tolist() == [192, 64, 64]  # (255*128 + 128*127)/255, (128*127)/255


def test_sixteen_bit_transparent_grey_alpha_and_palette_images(tmp_path, photos):
    photo = photos["chelsea"]
    half = photo.shape[1] // 2
    rgba16 = rgba_with_hidden_red(photo).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), cv2.cvtColor(rgba16, cv2.COLOR_RGBA2BGRA))
    deep = read_image(tmp_path / "deep.png")
    assert deep.dtype == np.uint8 and (deep[:, :half] == 128).all()
    assert np.array_equal(deep[:, half:], photo[:, half:])  # 16 bits scaled, not stretched

    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    alpha = np.where(np.arange(photo.shape[1]) < half, 0, 255).astype(np.uint8)[None].repeat(photo.shape[0], 0)
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(tmp_path / "grey_alpha.png")
    grey_alpha = read_image(tmp_path / "grey_alpha.png")
    assert (grey_alpha[:, :half] == 128).all() and np.array_equal(grey_alpha[:, half:, 1], grey[:, half:])

    palette = Image.fromarray(rgba_with_hidden_red(photo)).quantize(colors=64, method=Image.Quantize.FASTOCTREE)
    palette.save(tmp_path / "palette.png")
    assert Image.open(tmp_path / "palette.png").mode == "P"
    assert (read_image(tmp_path / "palette.png")[:, :half] == 128).all()


# 7. GIFs and the one list of readable files


def test_gifs_are_images_everywhere(tmp_path, photos):
    photo = photos["chelsea"]
    frames = [Image.fromarray(photo), Image.fromarray(photo[::-1])]
    frames[0].save(tmp_path / "loop.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(rgba_with_hidden_red(photo)).save(tmp_path / "cutout.gif", transparency=0)
    assert ".gif" in IMAGE_SUFFIXES
    assert scan_folder(tmp_path).images == [tmp_path / "cutout.gif", tmp_path / "loop.gif"]
    first = read_frame(tmp_path / "loop.gif")
    assert first.shape == photo.shape and np.abs(first.astype(int) - photo).mean() < 12  # 256 colours
    assert (read_image(tmp_path / "cutout.gif")[:, : photo.shape[1] // 2] == 128).all()
    with pytest.raises(InputError, match="is an image: it has no frame 1"):
        read_frame(tmp_path / "loop.gif", 1)


# 8. huge images


PEAK_MEMORY = """
import resource, sys
from livevis.models.data.images import read_image
for path in sys.argv[1:]:
    image = read_image(path)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, *image.shape)
"""


def test_a_huge_jpeg_costs_little_more_memory_than_an_ordinary_photo(tmp_path, chelsea_path):
    """One process reads an ordinary photo, then a 12,000 x 12,000 JPEG: its peak may grow by a third at most
    (it doubled and more when the whole image was decoded)."""
    photo = cv2.imdecode(np.fromfile(chelsea_path, np.uint8), cv2.IMREAD_COLOR)
    huge = tmp_path / "huge.jpg"
    assert cv2.imwrite(str(huge), cv2.resize(photo, (12000, 12000)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    run = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, str(chelsea_path), str(huge)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    (ordinary_kb, *ordinary_shape), (huge_kb, *huge_shape) = [
        [int(v) for v in line.split()] for line in run.stdout.splitlines()
    ]
    assert ordinary_shape == list(photo.shape)
    assert huge_shape == [3000, 3000, 3]  # decoded at 1/4: within the 4096 px cap
    assert huge_kb < 1.35 * ordinary_kb, f"peak {huge_kb / 1024:.0f} MB vs {ordinary_kb / 1024:.0f} MB"


def uniform_png(path: Path, side: int, colour_type: int) -> Path:
    """A side x side PNG of one grey level, written row by row: 10,000 x 10,000 grey pixels fit in 100 KB."""
    channels = {0: 1, 2: 3}[colour_type]
    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes([90]) * side * channels  # filter 0, then the row
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", side, side, 8, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


def uniform_image(path: Path, side: int) -> Path:
    options = [cv2.IMWRITE_WEBP_QUALITY, 101] if path.suffix == ".webp" else [cv2.IMWRITE_TIFF_COMPRESSION, 8]
    assert cv2.imwrite(str(path), np.full((side, side, 3), 90, np.uint8), options)  # lossless, deflated
    return path


HUGE_IMAGES = {
    "grey PNG": lambda folder, side: uniform_png(folder / f"grey{side}.png", side, 0),
    "colour PNG": lambda folder, side: uniform_png(folder / f"colour{side}.png", side, 2),
    "WebP": lambda folder, side: uniform_image(folder / f"colour{side}.webp", side),
    "TIFF": lambda folder, side: uniform_image(folder / f"colour{side}.tiff", side),
}

PEAK_OR_REFUSAL = """
import re, sys
from pathlib import Path
from livevis.models.data.images import read_image
from livevis.models.errors import InputError
for path in sys.argv[1:]:
    try:
        shape = read_image(path).shape
    except InputError as exc:
        shape = ("refused", str(exc))
    peak_kb = re.search(r"VmHWM:\\s*(\\d+) kB", Path("/proc/self/status").read_text()).group(1)
    print(peak_kb, *shape, sep="\t")
"""
"""Peak resident memory from /proc (reset when a program starts): getrusage's ru_maxrss carries the parent's
peak over fork and exec, which hides a child's smaller one."""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak memory is read from /proc")
@pytest.mark.parametrize("kind", list(HUGE_IMAGES))
def test_a_10000_pixel_image_costs_under_400_mb_more_than_a_1000_pixel_one_or_is_refused(tmp_path, kind):
    """A PNG, WebP or TIFF compresses 10,000 x 10,000 pixels of one colour into kilobytes: it is decoded
    within the memory livevis gives one image, or refused in one line before it is decoded."""
    ordinary, huge = HUGE_IMAGES[kind](tmp_path, 1000), HUGE_IMAGES[kind](tmp_path, 10_000)
    assert huge.stat().st_size < 1_000_000
    run = subprocess.run(
        [sys.executable, "-c", PEAK_OR_REFUSAL, str(ordinary), str(huge)], capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stderr
    (ordinary_kb, *ordinary_shape), (huge_kb, *huge_shape) = [line.split("\t") for line in run.stdout.splitlines()]
    assert ordinary_shape == ["1000", "1000", "3"]
    grown_mb = (int(huge_kb) - int(ordinary_kb)) / 1024
    assert grown_mb < 400, f"{kind}: {grown_mb:.0f} MB more for 10,000 x 10,000 pixels ({huge_shape})"
    if huge_shape[0] == "refused":
        assert huge_shape[1].startswith(f"{huge} is a 10000 x 10000 8-bit ") and "\n" not in huge_shape[1]
    else:
        assert huge_shape == ["4096", "4096", "3"]
    if kind == "grey PNG":
        assert huge_shape[0] != "refused", "100 megapixels of grey fit in what one image may take"


def test_the_command_line_refuses_a_huge_image_in_one_line(tmp_path):
    uniform_png(tmp_path / "huge.png", 10_000, 2)
    run = subprocess.run(
        [str(LIVEVIS), "render", "huge.png", "--weights", "none", "--out", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("livevis: error: huge.png is a 10000 x 10000 8-bit PNG: decoding it would take")
    assert len(run.stderr.splitlines()) == 1


def test_the_size_comes_from_the_header_without_decoding(tmp_path, chelsea_path):
    header = read_header(np.fromfile(chelsea_path, np.uint8))
    assert (header.width, header.height, header.is_jpeg) == (451, 300, True)
    assert read_header(b"not an image at all") == read_header(b"")


@pytest.mark.parametrize(
    "suffix, options, channels",
    [
        (".png", {}, 3),
        (".webp", {"lossless": True}, 3),
        (".webp", {"quality": 80}, 3),
        (".tiff", {"compression": "tiff_deflate"}, 3),
        (".gif", {}, 4),
        (".bmp", {}, 3),
        (".ppm", {}, 3),
    ],
)
def test_every_formats_header_gives_its_size_before_decoding(tmp_path, photos, suffix, options, channels):
    photo = photos["astronaut"][:301, :457]
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(photo).save(path, **options)
    header = read_header(np.fromfile(path, np.uint8))
    assert (header.width, header.height, header.channels) == (457, 301, channels)


def test_a_header_with_transparency_or_16_bits_counts_them(tmp_path, photos):
    rgba = np.dstack([photos["chelsea"], np.full(photos["chelsea"].shape[:2], 200, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "cutout.webp", lossless=True)
    assert read_header(np.fromfile(tmp_path / "cutout.webp", np.uint8)).channels == 4
    cv2.imwrite(str(tmp_path / "deep.tiff"), photos["chelsea"].astype(np.uint16) * 257)
    deep = read_header(np.fromfile(tmp_path / "deep.tiff", np.uint8))
    assert (deep.width, deep.height, deep.channels, deep.sample_bytes) == (451, 300, 3, 2)


# 10. empty videos


def test_a_video_with_no_frames_says_so(tmp_path):
    for name, fourcc in (("empty.avi", "MJPG"), ("empty.mp4", "mp4v")):
        writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 48))
        assert writer.isOpened()
        writer.release()
        with pytest.raises(InputError, match=rf"{name} has no frames"):
            read_frame(tmp_path / name)
    source = VideoFileSource(tmp_path / "empty.avi")
    with pytest.raises(InputError, match="empty.avi has no frames"):
        source.read()
    source.close()


# 3 and 12 through the installed command: one line on stderr, exit status 2


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "bad.pt2").write_bytes(b"PK\x03\x04 not an exported program")
    with open(folder / "proto4.pkl", "wb") as handle:
        pickle.dump({"weight": [1, 2, 3]}, handle, protocol=4)
    os.mkfifo(folder / "pipe.jpg")
    return folder


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "bad.pt2"], "livevis: error: bad.pt2 is not a TorchScript or torch.export (.pt2) model file"),
        (["--weights", "proto4.pkl"], "livevis: error: proto4.pkl holds Python objects, not only tensors"),
    ],
)
def test_bad_model_and_weights_files_print_one_line(bad_files, chelsea_path, args, message):
    run = run_livevis("render", str(chelsea_path), *args, "--out", "out", cwd=bad_files)
    assert run.returncode == 2
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith(message), run.stderr


def test_rendering_a_named_pipe_fails_at_once_in_one_line(bad_files):
    run = run_livevis("render", "pipe.jpg", cwd=bad_files)
    assert run.returncode == 2
    assert run.stderr == (
        "livevis: error: pipe.jpg is a named pipe (FIFO), not a file; livevis reads image and video files only\n"
    )
