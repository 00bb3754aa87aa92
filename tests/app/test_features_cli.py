"""`livevis features train`, `features show` and `render --features/--feature-off` on Google's trained
EfficientNet-Lite0 and real photos: the arrays written, the edit's effect, each feature's top image against a
brute-force ranking, and bad files as one line with exit status 2."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from safetensors.numpy import load_file

from livevis.app.cli import main

LAYER = "blocks.5.0.bn1.act"
MODEL = ["--model", "efficientnet_lite0"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: the cells and the receptive fields are computed once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def learnt(tmp_path_factory, photos, cache):
    folder = tmp_path_factory.mktemp("photos")
    for name, image in photos.items():
        h, w = image.shape[:2]
        for suffix, picture in (("", image), ("-crop", image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4])):
            cv2.imwrite(str(folder / f"{name}{suffix}.jpg"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    out = tmp_path_factory.mktemp("sae") / "lite0.safetensors"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIVEVIS_CACHE", str(cache))
        code = main(
            ["features", "train", *MODEL, "--layer", LAYER, "--folder", str(folder), "--width", "1x"]
            + ["--k", "8", "--epochs", "2", "--batch-size", "256", "--out", str(out), "--json"]
        )
    assert code == 0
    return folder, out


def test_train_writes_the_file_and_says_its_figures(learnt, capsys):
    _, out = learnt
    assert main(["features", "show", str(out), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["k"] == "8" and said["features"] == 672 and said["layer"] == LAYER
    figures = json.loads(said["figures"])
    assert figures["epochs"] == 2 and figures["held_out_images"] == 1


def test_render_with_a_feature_off_writes_the_codes_and_both_probabilities(learnt, chelsea_path, tmp_path):
    _, out = learnt
    tensors = load_file(str(out))
    args = ["render", str(chelsea_path), *MODEL, "--layer", LAYER, "--features", str(out), "--save-activations"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    plain = np.load(tmp_path / "plain" / "activations.npz")
    codes = plain["features"]
    assert codes.shape == (672, 14, 14) and codes.dtype == np.float32
    assert plain["reconstruction"].shape == (672, 14, 14) and plain["explained_variance"].shape == ()
    assert "probs" not in plain.files, "no edit: nothing to compare"
    strongest = int(codes.reshape(672, -1).sum(1).argmax())
    assert main([*args, "--feature-off", str(strongest), "--out", str(tmp_path / "off")]) == 0
    off = np.load(tmp_path / "off" / "activations.npz")
    np.testing.assert_array_equal(off["features"], codes)  # the codes are the layer's as measured
    assert off["probs"].shape == off["probs_edited"].shape == (1000,)
    x = plain["activation"].reshape(672, -1).T
    assert np.abs(off["probs"] - off["probs_edited"]).max() > 1e-4
    assert np.abs(off["probs"].sum() - 1) < 1e-4 and np.abs(off["probs_edited"].sum() - 1) < 1e-4
    rebuilt = codes.reshape(672, -1).T @ tensors["W_dec"] + tensors["b_dec"]
    np.testing.assert_allclose(plain["reconstruction"].reshape(672, -1).T, rebuilt, atol=1e-3)
    ev = 1 - ((x - rebuilt) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert float(plain["explained_variance"]) == pytest.approx(ev, abs=1e-4)


def test_show_writes_each_features_top_crops_ranked_as_a_brute_force_ranking(
    learnt, lite0, tmp_path, monkeypatch, cache
):
    folder, out = learnt
    monkeypatch.setenv("LIVEVIS_CACHE", str(cache))
    tensors = load_file(str(out))
    best = {}
    for path in sorted(folder.iterdir()):  # every photo's strongest code of each feature, as the live view sees it
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        rows = lite0.run(image, [LAYER]).activations[LAYER].reshape(672, -1).T.numpy()
        pre = (rows - tensors["b_dec"]) @ tensors["W_enc"].T + tensors["b_enc"]
        kth = np.sort(pre, axis=1)[:, -8][:, None]
        best[path.name] = np.where(pre >= kth, np.maximum(pre, 0), 0).max(0)
    names = list(best)
    table = np.stack([best[n] for n in names])
    used = int(table.sum(0).argmax())
    assert (
        main(
            ["features", "show", str(out), *MODEL, "--out", str(tmp_path / "g"), "--features", str(used)]
            + ["--steps", "2", "--json"]
        )
        == 0
    )
    about = json.loads((tmp_path / "g" / "features.json").read_text())
    assert about[0]["feature"] == used
    ranked = [names[i] for i in np.argsort(-table[:, used], kind="stable") if table[i, used] > 0]
    assert about[0]["top"][:3] == ranked[:3]
    picture = cv2.imread(str(tmp_path / "g" / f"feature_{used}.png"))
    assert picture is not None and picture.shape[1] >= 64 * 9


def test_a_damaged_features_file_is_one_line_and_exit_2(chelsea_path, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    assert main(["features", "show", str(bad)]) == 2
    assert main(["render", str(chelsea_path), *MODEL, "--features", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("features file" in line for line in err)
    assert main(["render", str(chelsea_path), *MODEL, "--feature-off", "3", "--out", str(tmp_path / "o")]) == 2
    assert "--feature-off needs --features" in capsys.readouterr().err


def test_two_torchrun_processes_read_the_cells_one_process_reads(learnt, cache, tmp_path):
    """Each process reads every other photo (and its mirrored view); rank 0 learns from all the cells, which are
    those one process read and cached, in the same order."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    folder, _ = learnt
    shared = tmp_path / "torchrun-cache"
    env = {**os.environ, "LIVEVIS_CACHE": str(shared), "OMP_NUM_THREADS": "1"}
    torchrun, livevis = Path(sys.executable).parent / "torchrun", Path(sys.executable).parent / "livevis"
    command = [str(torchrun), "--standalone", "--nproc-per-node", "2", "--no-python", str(livevis), "features"]
    command += ["train", *MODEL, "--layer", LAYER, "--folder", str(folder), "--width", "1x", "--k", "8"]
    command += ["--epochs", "1", "--views", "2", "--out", str(tmp_path / "two.safetensors"), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    said = json.loads(done.stdout)  # rank 0 alone speaks
    assert said["train_cells"] == 2 * 7 * 196 and said["held_out_cells"] == 196
    two = sorted((shared / "features" / "cells").glob("*.npz"))
    assert len(two) == 2  # the photos and their mirror images
    for file in two:
        with np.load(file) as by_two, np.load(cache / "features" / "cells" / file.name) as by_one:
            assert np.array_equal(by_two["items"], by_one["items"])
            np.testing.assert_allclose(by_two["rows"], by_one["rows"], rtol=1e-5, atol=1e-5)
