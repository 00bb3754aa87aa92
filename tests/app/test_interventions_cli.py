"""Interventions on the command line: `render --ablate` with the top-5 with and without the edit, `--impact`'s
ranking, `bench --ablate`, and bad requests as one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from livevis.app.cli import main
from livevis.models import Engine
from livevis.models.data.images import read_image

LAYER = "blocks.5.0.bn1.act"


def run(capsys, *args) -> tuple[int, str, str]:
    """The command's exit status (argparse's own, for a malformed argument), its stdout and stderr."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_render_ablate_prints_both_answers_and_saves_both_probabilities(tmp_path, capsys, chelsea_path):
    code, out, err = run(
        capsys,
        "render",
        chelsea_path,
        "--model",
        "efficientnet_lite0",
        "--ablate",
        f"{LAYER}:0-335",
        "--ablate-mode",
        "scale=0.25",
        "--save-activations",
        "--out",
        tmp_path,
    )
    assert code == 0, err
    assert "with the edits" in out and "without them" in out
    saved = np.load(tmp_path / "activations.npz")
    engine = Engine.load("efficientnet_lite0", device="cpu")
    x = torch.from_numpy(saved["input"])

    def quarter(_module, _inputs, output):
        output = output.clone()
        output[:, :336] *= 0.25
        return output

    handle = engine.model.get_submodule(LAYER).register_forward_hook(quarter)
    with torch.inference_mode():
        expected = engine.model(x).float().softmax(1)[0].numpy()
    handle.remove()
    np.testing.assert_allclose(saved["probs_edited"], expected, rtol=1e-4, atol=1e-7)
    with torch.inference_mode():
        plain = engine.model(x).float().softmax(1)[0].numpy()
    np.testing.assert_allclose(saved["probs"], plain, rtol=1e-4, atol=1e-7)


def test_render_impact_lists_every_channel_and_measures_the_strongest(tmp_path, capsys, chelsea_path):
    code, out, err = run(
        capsys,
        "render",
        chelsea_path,
        "--model",
        "efficientnet_lite0",
        "--impact",
        "--class",
        285,
        "--json",
        "--out",
        tmp_path,
    )
    assert code == 0, err
    impact = json.loads(out)["impact"]
    assert impact["class"] == 285 and impact["label"] == "Egyptian cat" and impact["layer"] == LAYER
    channels = impact["channels"]
    assert len(channels) == 672 and sum(c["measured"] is not None for c in channels) == 20
    assert [c["estimate"] for c in channels] == sorted(c["estimate"] for c in channels), "strongest support first"
    engine = Engine.load("efficientnet_lite0", device="cpu")
    first = channels[0]

    def off(_module, _inputs, output, channel=first["channel"]):
        output = output.clone()
        output[:, channel] = 0
        return output

    network_input = engine.run(read_image(chelsea_path), []).input
    handle = engine.model.get_submodule(LAYER).register_forward_hook(off)
    with torch.inference_mode():
        edited = float(engine.model(network_input)[0, 285])
    handle.remove()
    assert first["measured"] == pytest.approx(edited - impact["score"], abs=1e-4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ablate", "conv5:300"], "out of range"),
        (["--ablate", "nosuchlayer:3"], "nosuchlayer"),
        (["--ablate", "conv5:a"], "not a list of channels"),
        (["--ablate", "conv5"], "LAYER:CHANNELS"),
        (["--ablate", "conv5:1", "--ablate-mode", "scale"], "not an edit mode"),
    ],
)
def test_bad_edits_are_one_line_and_exit_2(tmp_path, capsys, chelsea_path, args, message):
    code, _, err = run(
        capsys, "render", chelsea_path, "--model", "alexnet", "--weights", "none", *args, "--out", tmp_path
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_bench_times_the_pipeline_with_the_edit(capsys):
    code, out, err = run(
        capsys, "bench", "--weights", "none", "--frames", 4, "--warmup", 1, "--ablate", "conv5:0-63", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["edits"] == ["features.10: 0-63 off"] and report["overhead_ratio"] > 0.5
