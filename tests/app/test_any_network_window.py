"""A non-classifier fed with tensor files, in the window."""

from __future__ import annotations

import numpy as np

from tests.app.conftest import wait_result
from tests.conftest import use_module
from tests.models.test_any_network import DYNAMICS_NET


def test_a_folder_of_tensors_through_an_image_to_image_net_in_the_window(qtbot, make_window, tmp_path, monkeypatch):
    use_module(tmp_path, monkeypatch, "dynnet", DYNAMICS_NET)
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        np.save(scenes / f"scene{i}.npy", rng.standard_normal((2, 40, 60)).astype(np.float32))
    window = make_window(scenes, model="dynnet:build")
    result = wait_result(qtbot, window, lambda r: "input_signed" in r.views.images)
    assert window.model.name == "dynnet:build" and window.model.categories == ()
    assert result.views.tensor_input and result.views.values["top5"] == []
    assert window.live.panes["predictions"].view.isHidden(), "no predictions for a network that is not a classifier"
    shown = window.live.panes["input"].image.image_array()
    assert np.array_equal(shown, result.views.images["input_signed"]), "the input pane shows each channel signed"
    assert [path for path, _, _ in window.model.layers][-1] == "output"
    first = result.source
    window.capture.step(1)
    later = wait_result(qtbot, window, lambda r: r.source != first)
    assert later.views.frame.shape == (40, 60, 3)
