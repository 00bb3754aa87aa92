"""`livevis render --concepts` and `livevis bench --concepts` end to end, on a real photo, and their bad input."""

from __future__ import annotations

import json
import warnings

import cv2
import numpy as np
import pytest
from sklearn.decomposition import NMF

from livevis.app.cli import main
from tests.app.test_cli import read_rgb, run_cli


def test_render_concepts_writes_the_picture_and_factors_that_rebuild_the_map(tmp_path, capsys, chelsea_path):
    code, out, err = run_cli(
        capsys,
        "render",
        chelsea_path,
        "--model",
        "efficientnet_lite0",
        "--layer",
        "bn2",
        "--concepts",
        4,
        "--save-activations",
        "--out",
        tmp_path,
    )
    assert code == 0, err
    assert "4 concepts" in out and "concepts.png" in out
    listed = [line for line in out.splitlines() if "of the map, channels" in line]
    assert len(listed) == 4 and any("cat" in line for line in listed), "at bn2 each concept is named by classes"
    picture = read_rgb(tmp_path / "concepts.png")
    assert picture.shape[1] >= 640 and picture.shape[0] > 300 * 640 / 451, "the frame, enlarged, over a legend"
    saved = np.load(tmp_path / "activations.npz")
    concepts, channels, activation = saved["concepts"], saved["concept_channels"], saved["activation"]
    assert concepts.shape == (4, 7, 7) and channels.shape == (4, 1280)
    assert concepts.dtype == np.float32 and concepts.min() >= 0 and channels.min() >= 0
    V = activation.reshape(1280, -1) - activation.reshape(1280, -1).min(1, keepdims=True)
    ours = np.linalg.norm(V - channels.T @ concepts.reshape(4, -1)) / np.linalg.norm(V)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF(4, max_iter=1000)
        reference = np.linalg.norm(V - model.fit_transform(V) @ model.components_) / np.linalg.norm(V)
    assert ours <= reference * 1.03, (ours, reference)


def test_render_concepts_json_lists_each_concept(tmp_path, capsys, chelsea_path):
    code, out, err = run_cli(
        capsys, "render", chelsea_path, "--weights", "none", "--concepts", 3, "--json", "--out", tmp_path
    )
    assert code == 0, err
    concepts = json.loads(out)["concepts"]
    assert len(concepts) == 3 and abs(sum(c["share"] for c in concepts) - 1) < 1e-6
    assert all(len(c["channels"]) == 4 and c["classes"] == [] for c in concepts), "conv5 does not feed the head"
    assert str(tmp_path / "concepts.png") in json.loads(out)["written"]


def test_render_a_video_with_concepts_writes_concepts_mp4(tmp_path, capsys, pan_video):
    code, out, err = run_cli(
        capsys, "render", pan_video, "--weights", "none", "--all-frames", "--concepts", 4, "--out", tmp_path
    )
    assert code == 0, err
    capture = cv2.VideoCapture(str(tmp_path / "concepts.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 24
    capture.release()


def test_bench_times_the_pipeline_with_the_concepts_view(capsys):
    code, out, err = run_cli(
        capsys, "bench", "--weights", "none", "--frames", 6, "--warmup", 2, "--concepts", 5, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["options"] == {"concept_count": 5} and "concepts" in report["views"]
    assert 0 < report["stages_ms"]["concepts"]["p50"] < report["stages_ms"]["render"]["p95"] * 10
    assert report["overhead_ratio"] > 0.5


BAD = {
    "too many concepts": (["render", "{chelsea}", "--weights", "none", "--concepts", "13"], "must be 2 to 12"),
    "too few concepts": (["render", "{chelsea}", "--weights", "none", "--concepts", "1"], "must be 2 to 12"),
    "a vector layer": (
        ["render", "{chelsea}", "--weights", "none", "--layer", "fc7", "--concepts", "5"],
        "concepts need a layer with spatial maps; fc7 outputs 4096 values",
    ),
    "a 1 x 1 map": (
        ["render", "{chelsea}", "--model", "efficientnet_lite0", "--layer", "global_pool.pool", "--concepts", "5"],
        "1 x 1 map",
    ),
    "bench too many": (["bench", "--weights", "none", "--concepts", "20"], "must be 2 to 12"),
    "bench a vector layer": (["bench", "--weights", "none", "--layer", "fc8", "--concepts", "3"], "spatial maps"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_concept_requests_exit_2_with_one_line(case, capsys, chelsea_path):
    args, expected = BAD[case]
    code = main([a.format(chelsea=chelsea_path) for a in args])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and "Traceback" not in captured.err, captured.err
    assert len(lines) == 1 and expected in lines[0], captured.err
