"""The command line end to end, on real photos and a real video, and on every kind of bad input."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

from livevis.app.cli import main
from tests.conftest import write_video

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable PNG"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("photo", ["chelsea", "coffee", "china"])
def test_render_real_photos(tmp_path, capsys, photos, photo):
    source = tmp_path / f"{photo}.png"
    cv2.imwrite(str(source), cv2.cvtColor(photos[photo], cv2.COLOR_RGB2BGR))
    code, out, err = run_cli(capsys, "render", source, "--weights", "none", "--channel", 7, "--out", tmp_path / "o")
    assert code == 0, err
    overlay = read_rgb(tmp_path / "o" / "overlay.png")
    assert overlay.shape == photos[photo].shape
    grid = read_rgb(tmp_path / "o" / "grid.png")
    assert min(grid.shape[:2]) >= 600, "grid.png is scaled up to be readable"
    assert grid.std() > 10, "the grid shows structure, not a flat colour"
    signed = read_rgb(tmp_path / "o" / "input_signed.png")
    assert signed.shape[1] > 2 * signed.shape[0], "three input channels side by side"
    assert "UNTRAINED" in out and "conv5" in out
    assert len([line for line in out.splitlines() if line[:2] in {f"{i}." for i in range(1, 6)}]) == 5


def test_render_saves_activations_equal_to_a_direct_torchvision_forward(
    tmp_path, capsys, chelsea_path, alexnet_weights_file
):
    code, _, err = run_cli(
        capsys,
        "render",
        chelsea_path,
        "--weights",
        alexnet_weights_file,
        "--layer",
        "conv5",
        "--channel",
        3,
        "--out",
        tmp_path,
        "--save-activations",
    )
    assert code == 0, err
    saved = np.load(tmp_path / "activations.npz")
    assert saved["input"].shape == (1, 3, 224, 224) and saved["input"].dtype == np.float32
    assert str(saved["layer"]) == "features.10" and int(saved["channel"]) == 3
    assert saved["crop"].tolist() == [75, 0, 300, 300]  # chelsea is 451 x 300
    model = torchvision.models.alexnet(weights=None)
    model.load_state_dict(torch.load(alexnet_weights_file, weights_only=True))
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(saved["input"])
        conv5 = model.features[:11](x)[0].numpy()
        probs = model(x)[0].softmax(0)
    np.testing.assert_allclose(saved["activation"], conv5, atol=1e-4)
    top5 = probs.topk(5)
    assert saved["top5_index"].tolist() == top5.indices.tolist()
    np.testing.assert_allclose(saved["top5_prob"], top5.values.numpy(), atol=1e-5)
    assert saved["top5_index"].dtype == np.int64 and saved["top5_prob"].dtype == np.float32


def test_render_a_video_frame(tmp_path, capsys, pan_video):
    code, out, err = run_cli(
        capsys,
        "render",
        pan_video,
        "--weights",
        "none",
        "--frame",
        20,
        "--layer",
        "features.3",
        "--colormap",
        "viridis",
        "--norm",
        "channel",
        "--out",
        tmp_path,
    )
    assert code == 0, err
    assert read_rgb(tmp_path / "overlay.png").shape == (240, 320, 3)
    assert "conv2" in out


def test_layers_json(capsys):
    code, out, _ = run_cli(capsys, "layers", "--model", "resnet18", "--json")
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["name"] == "input" and rows[-1]["name"] == "prob"
    layer4 = next(row for row in rows if row["path"] == "layer4")
    assert (
        layer4
        | {
            "path": "layer4",
            "name": "layer4",
            "shape": [512, 7, 7],
            "type": "Sequential",
            "prefix_tokens": 0,
            "reads_as": "maps",
        }
        == layer4
    )


def test_layers_table_marks_the_default(capsys):
    code, out, _ = run_cli(capsys, "layers")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "module", "path", "output", "type"]
    assert any(line.startswith("* conv5") and "features.10" in line and "256 x 13 x 13" in line for line in lines)


def test_bench_json_has_the_promised_keys(capsys, pan_video):
    code, out, err = run_cli(
        capsys, "bench", "--weights", "none", "--frames", 6, "--warmup", 2, "--source", pan_video, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["frames"] == 6 and report["fps"] > 0 and report["overhead_ratio"] > 0.5
    assert set(report["stages_ms"]) == {"decode", "preprocess", "forward", "render", "copy"}
    assert report["pipeline_ms"]["p95"] >= report["pipeline_ms"]["p50"] > 0
    assert report["device"] == "cpu" or report["device"].startswith("cuda")
    assert report["view_size"] == "640x480", "the overlay is rendered at the frame's size unless asked"


def test_bench_renders_the_overlay_at_the_size_asked(capsys):
    code, out, err = run_cli(
        capsys, "bench", "--weights", "none", "--frames", 3, "--warmup", 1, "--view-size", "320x240", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["view_size"] == "320x240"


def _bad_input_files(tmp: Path, chelsea: Path) -> dict[str, Path]:
    files = {
        "empty": tmp / "empty.jpg",
        "text": tmp / "notes.png",
        "truncated": tmp / "cut.jpg",
        "png": tmp / "cut.png",
        "garbage_video": tmp / "broken.mp4",
        "a_file": tmp / "plain.txt",
        "resnet": tmp / "resnet18.pth",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not an image")
    files["truncated"].write_bytes(chelsea.read_bytes()[: chelsea.stat().st_size // 2])
    ok, encoded = cv2.imencode(".png", np.zeros((50, 50, 3), np.uint8) + 90)
    files["png"].write_bytes(encoded.tobytes()[:60])
    files["garbage_video"].write_bytes(b"\x00\x01 not a video" * 100)
    files["a_file"].write_text("a file, so no folder can be made under it\n" * 40)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), files["resnet"])
    return files


GOOD = ["{chelsea}", "--weights", "none"]
BAD_INPUTS = {
    "missing file": (["render", "{tmp}/nope.jpg", "--weights", "none"], "no such file"),
    "empty file": (["render", "{empty}", "--weights", "none"], "empty"),
    "truncated jpeg": (["render", "{truncated}", "--weights", "none"], "truncated"),
    "truncated png": (["render", "{png}", "--weights", "none"], "cannot decode|not an image"),
    "not an image": (["render", "{text}", "--weights", "none"], "not an image"),
    "unreadable video": (["render", "{garbage_video}", "--weights", "none"], "cannot open this video"),
    "unknown model": (["render", *GOOD, "--model", "alexnot"], "unknown model 'alexnot'"),
    "unknown layer": (["render", *GOOD, "--layer", "conv9"], "livevis layers"),
    "unknown colormap": (["render", *GOOD, "--colormap", "jet"], "unknown colormap 'jet'"),
    "channel out of range": (["render", *GOOD, "--channel", "999"], "channel 999 is out of range"),
    "weights that do not fit": (["render", "{chelsea}", "--weights", "{resnet}"], "does not fit this model"),
    "missing weights file": (["render", "{chelsea}", "--weights", "{tmp}/w.pth"], "does not exist"),
    "not a weights file": (["render", "{chelsea}", "--weights", "{a_file}"], "not a PyTorch weights file"),
    "output folder impossible": (["render", *GOOD, "--out", "{a_file}/out"], "cannot create the folder"),
    "missing video to bench": (["bench", "--source", "{tmp}/nope.mp4"], "no such file"),
    "bad resolution": (["bench", "--weights", "none", "--resolution", "big"], "WIDTHxHEIGHT"),
    "bad view size": (["bench", "--weights", "none", "--view-size", "wide"], "WIDTHxHEIGHT"),
    "bad option value": (["render", *GOOD, "--channel", "three"], "invalid int value"),
    "frame of an image": (["render", *GOOD, "--frame", "3"], "is an image: it has no frame 3"),
    "unknown backprop mode": (["render", *GOOD, "--backprop", "lrp"], "unknown backprop mode 'lrp'"),
    "unknown backprop view": (["render", *GOOD, "--backprop", "guided", "--backprop-view", "x"], "unknown"),
    "class out of range": (["render", *GOOD, "--backprop", "gradcam", "--class", "1000"], "class 1000 is out of"),
    "--at outside the frame": (["render", *GOOD, "--at", "5000,10"], "outside the frame"),
    "--at outside the crop": (["render", *GOOD, "--at", "2,200"], "outside the square the network sees"),
    "--at not a point": (["render", *GOOD, "--at", "middle"], "is not a pixel X,Y"),
    "bench unknown backprop": (["bench", "--weights", "none", "--backprop", "lrp"], "unknown backprop mode"),
}


@pytest.fixture(scope="module")
def bad_input_files(tmp_path_factory, chelsea_path) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bad")
    return {"tmp": tmp, "chelsea": chelsea_path, **_bad_input_files(tmp, chelsea_path)}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_exit_2_with_one_line_and_no_traceback(case, bad_input_files, capsys):
    import re

    args, expected = BAD_INPUTS[case]
    try:
        code = main([a.format(**bad_input_files) for a in args])
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and "Traceback" not in captured.err, captured.err
    assert len(lines) == 1 and re.search(expected, lines[0]), captured.err


def test_the_installed_command_reports_errors_without_a_traceback(tmp_path, pan_video):
    """Through the real entry point, in a fresh process."""
    frame_too_far = subprocess.run(
        [
            sys.executable,
            "-m",
            "livevis",
            "render",
            str(pan_video),
            "--weights",
            "none",
            "--frame",
            "500",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert frame_too_far.returncode == 2
    assert frame_too_far.stderr.strip() == (
        f"livevis: error: {pan_video} has 24 frames; frame 500 does not exist (use 0..23)"
    )
    noise = np.random.default_rng(0).integers(0, 255, (30, 64, 80, 3), dtype=np.uint8)
    cut = write_video(tmp_path / "cut.mp4", list(noise))
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # no index at the end: FFmpeg complains
    truncated = subprocess.run(
        [sys.executable, "-m", "livevis", "render", str(cut), "--weights", "none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert truncated.returncode == 2
    assert truncated.stderr.strip() == (
        f"livevis: error: {cut}: cannot open this video (unsupported codec or not a video file)"
    )
    video = write_video(tmp_path / "tiny.avi", [np.full((64, 80, 3), 120, np.uint8)] * 3)
    ok = subprocess.run(
        [sys.executable, "-m", "livevis", "render", str(video), "--weights", "none", "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "o" / "grid.png").is_file()


def test_models_lists_the_registry_with_weight_availability(capsys):
    code, out, _ = run_cli(capsys, "models", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert {
        "alexnet",
        "vgg16",
        "resnet18",
        "resnet50",
        "resnet152",
        "googlenet",
        "squeezenet1_1",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "efficientnet_lite0",
        "lenet",
    } <= set(rows)
    assert rows["efficientnet_lite0"]["trained_weights_available"]
    assert rows["lenet"]["trained_weights_available"] and rows["lenet"]["input_size"] == 28
    assert "download.pytorch.org" in rows["alexnet"]["weights"] or "cached" in rows["alexnet"]["weights"]


def test_render_with_a_users_factory_model(tmp_path, capsys):
    from livevis.models.zoo.lenet import WEIGHTS_FILE

    digit = tmp_path / "digit.png"
    from livevis.models.data.datasets import mnist_split

    test_set = mnist_split()[1]
    cv2.imwrite(str(digit), test_set.images[0])
    code, out, err = run_cli(
        capsys,
        "render",
        digit,
        "--model",
        "livevis.models.zoo.lenet:LeNet5",
        "--weights",
        WEIGHTS_FILE,
        "--input-size",
        28,
        "--mean",
        "0.1307",
        "--std",
        "0.3081",
        "--out",
        tmp_path,
    )
    assert code == 0, err
    first = next(line for line in out.splitlines() if line.startswith("1. "))
    assert first.startswith(f"1. class {test_set.labels[0]} ")


def test_embed_json_and_figure(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    figure = tmp_path / "digits.png"
    code, out, err = run_cli(
        capsys, "embed", "--dataset", "digits", "--samples", 400, "--layers", "input,relu4", "--out", figure, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert [layer["name"] for layer in report["layers"]] == ["input", "relu4"]
    assert set(report["layers"][0]) >= {"name", "dimension", "knn_accuracy", "trustworthiness", "seconds"}
    assert report["layers"][0]["dimension"] == 784
    image = read_rgb(figure)
    assert image.shape[1] > 600 and image.std() > 20


def test_embed_bad_inputs_exit_2(tmp_path, capsys):
    (tmp_path / "only").mkdir()
    (tmp_path / "a_file").write_text("no folder can be made under a file")
    for args, expected in (
        (["embed", "--dataset", str(tmp_path / "only")], "no class sub-folders"),
        (["embed", "--dataset", "digits", "--samples", "5"], "10 samples or more"),
        (["embed", "--dataset", "digits", "--method", "umap", "--samples", "100"], "unknown t-SNE method"),
        (["embed", "--dataset", "digits", "--out", str(tmp_path / "map.xyz")], "name it .png, .pdf or .svg"),
        (["embed", "--dataset", "digits", "--out", str(tmp_path / "a_file" / "map.png")], "cannot create the folder"),
    ):
        code, _, err = run_cli(capsys, *args)
        assert code == 2 and expected in err and "Traceback" not in err, err


def test_a_users_model_that_cannot_be_built_or_run_says_why(tmp_path, capsys, monkeypatch):
    (tmp_path / "brokennet.py").write_text("def make():\n    raise RuntimeError('needs a GPU')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    lenet = ["--model", "livevis.models.zoo.lenet:LeNet5"]
    cases = {
        "factory raises": (["--model", "brokennet:make"], "brokennet:make() failed: RuntimeError: needs a GPU"),
        "input too small": ([*lenet, "--input-size", "4", "--mean", "0.1", "--std", "0.3"], "run on a 1 x 4 x 4 input"),
        "three channels for one": ([*lenet, "--input-size", "28", "--in-channels", "3"], "run on a 3 x 28 x 28 input"),
        "channels and means disagree": ([*lenet, "--in-channels", "2", "--mean", "0.1"], "--mean has 1 values"),
        "zero std": ([*lenet, "--mean", "0.1", "--std", "0"], "--std must be above 0"),
        "options for a listed model": (["--model", "lenet", "--labels", "x.txt"], "--labels is for your own model"),
    }
    for case, (args, expected) in cases.items():
        code, _, err = run_cli(capsys, "layers", *args)
        assert code == 2 and err.count("\n") == 1 and expected in err and "Traceback" not in err, (case, err)
    code, out, err = run_cli(capsys, "layers", *lenet, "--input-size", "28", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["shape"] == [1, 28, 28], "one input channel, as the first convolution takes"


def test_version_flag(capsys):
    from livevis.app import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"livevis {__version__}"
    assert __version__ != "unknown", "the package is installed"


def test_render_a_folder_of_photos_one_folder_of_views_each(tmp_path, capsys, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(photos[name], cv2.COLOR_RGB2BGR))
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "views"
    code, stdout, err = run_cli(capsys, "render", folder, "--model", "efficientnet_lite0", "--out", out)
    assert code == 0, err
    assert err.startswith("skipped: ") and "broken.png" in err and err.count("\n") == 1
    lines = {line.split(":")[0]: line for line in stdout.splitlines()}
    assert "cat" in lines["chelsea.jpg"] and "espresso" in lines["coffee.jpg"]
    assert "for 2 of 3 images" in stdout.splitlines()[-1]
    for name in ("chelsea", "coffee"):
        assert read_rgb(out / name / "overlay.png").shape == photos[name].shape
        assert (out / name / "grid.png").is_file() and (out / name / "input_signed.png").is_file()

    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "a.jpg").write_bytes(b"")
    code, _, err = run_cli(capsys, "render", tmp_path / "unreadable", "--weights", "none")
    assert code == 2 and err.splitlines()[-1].startswith("livevis: error: none of the 1 images")


@pytest.mark.parametrize("mode", ["grad", "deconv", "guided", "gradcam"])
def test_render_backprop_writes_the_view_and_the_exact_gradient(tmp_path, capsys, chelsea_path, mode):
    """backprop.png on the frame, and in activations.npz the gradient with respect to the saved input (or
    Grad-CAM at the layer's resolution), checked against the stand-alone functions on that input."""
    import livevis.models.attribution.backprop as backprop
    from livevis.models import Engine

    code = main(
        [
            "render",
            str(chelsea_path),
            "--model",
            "efficientnet_lite0",
            "--layer",
            "blocks.5",
            "--channel",
            "7",
            "--backprop",
            mode,
            "--backprop-view",
            "normblur",
            "--save-activations",
            "--out",
            str(tmp_path),
            "--json",
            *(["--gradcam-layer", "blocks.5"] if mode == "gradcam" else []),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)
    picture = cv2.imread(str(tmp_path / "backprop.png"))
    frame = cv2.imread(str(chelsea_path))
    assert picture.shape == frame.shape and not np.array_equal(picture, frame)
    saved = np.load(tmp_path / "activations.npz")
    model = Engine.load("efficientnet_lite0", device="cpu").model
    x = torch.from_numpy(saved["input"])
    if mode == "gradcam":
        expected = backprop.grad_cam(model, x, "blocks.5")
        assert saved["gradcam"].shape == (7, 7) and "backprop" not in saved
        assert np.allclose(saved["gradcam"], expected.cam[0].numpy(), rtol=1e-4, atol=1e-6)
        assert report["gradcam_class"] == saved["top5_index"][0]
    else:
        expected = backprop.unit_gradient(model, x, "blocks.5", 7, mode)
        assert saved["backprop"].shape == (3, 224, 224) and "gradcam" not in saved
        assert np.allclose(saved["backprop"], expected.gradient[0].numpy(), rtol=1e-4, atol=1e-7)
        assert report["backprop_rule_count"] == 33


def test_render_at_ranks_the_units_under_a_pixel_as_a_brute_force_does(tmp_path, capsys, chelsea_path):
    code = main(
        [
            "render",
            str(chelsea_path),
            "--weights",
            "none",
            "--at",
            "250,140",
            "--save-activations",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    saved = np.load(tmp_path / "activations.npz")
    x, y, w, h = saved["crop"]
    activation = saved["activation"]
    row, col = int((140 - y) * 13 // h), int((250 - x) * 13 // w)
    assert report["units_at"]["cell"] == [row, col]
    values = activation[:, row, col]
    order = sorted(range(len(values)), key=lambda c: (-values[c], c))[:10]
    assert [u["channel"] for u in report["units_at"]["top"]] == order
    assert [u["value"] for u in report["units_at"]["top"]] == pytest.approx(values[order].tolist())


def test_render_a_folder_as_json_is_one_object(tmp_path, capsys, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(photos[name], cv2.COLOR_RGB2BGR))
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "views"
    code, stdout, err = run_cli(capsys, "render", folder, "--model", "efficientnet_lite0", "--out", out, "--json")
    assert code == 0 and err == "", err
    report = json.loads(stdout)
    images = {Path(image["file"]).name: image for image in report["images"]}
    assert set(images) == {"chelsea.jpg", "coffee.jpg"}
    assert "cat" in images["chelsea.jpg"]["top5"][0]["label"] and images["coffee.jpg"]["top5"][0]["label"] == "espresso"
    assert str(out / "chelsea" / "grid.png") in images["chelsea.jpg"]["written"]
    x, y, w, h = images["chelsea.jpg"]["crop"]
    assert w == h and x > 0 and y >= 0, "the centre square the network saw"
    reasons = {Path(skip["file"]).name: skip["reason"] for skip in report["skipped"]}
    assert set(reasons) == {"broken.png", "notes.txt"} and "not an image" in reasons["notes.txt"]
