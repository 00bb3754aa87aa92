"""A vision transformer in the window (offscreen): its attention pane, token norms and prefix tokens, the
keys and clicks that drive them, and a snapshot of it all; a convolutional network shows none of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import QPoint, Qt

from livevis.views.transformers import MEAN_OF_HEADS
from tests.app.conftest import TIMEOUT_MS, wait_result

VIT = "timm:vit_tiny_patch16_224"


def test_the_attention_pane_follows_the_frame_a_click_asks_from_a_patch_and_keys_drive_it(qtbot, make_window, video):
    window = make_window(video, model=VIT)
    result = wait_result(qtbot, window, lambda r: "attention" in r.views.images, timeout=120_000)
    live = window.live
    assert all(live.is_open(pane) for pane in ("attention", "token_norms", "prefix_tokens"))
    assert result.views.values["attention_layout"].channels == 3 and result.views.layer.path == "blocks.7"
    qtbot.waitUntil(lambda: "attention at blocks.7 from the class token" in live.panes["attention"].caption.text())
    qtbot.waitUntil(lambda: "left to right: class" in live.panes["prefix_tokens"].title_text())

    overlay = live.panes["attention"].overlay
    crop = result.views.crop
    cell_size = crop.w / 14
    point = overlay.to_widget(crop.x + 9.5 * cell_size, crop.y + 4.5 * cell_size)
    qtbot.mouseClick(overlay, Qt.MouseButton.LeftButton, pos=QPoint(round(point.x()), round(point.y())))
    assert window.state.attention_query == (4, 9)
    asked = wait_result(qtbot, window, lambda r: r.views.values.get("attention_query_cell") == (4, 9))
    assert "from patch (4, 9)" in live.panes["attention"].caption.text()
    assert not np.array_equal(asked.views.images["attention"], result.views.images["attention"])
    qtbot.mouseClick(overlay, Qt.MouseButton.RightButton, pos=QPoint(round(point.x()), round(point.y())))
    assert window.state.attention_query is None

    assert window.state.attention_head == MEAN_OF_HEADS
    qtbot.keyClick(window, Qt.Key.Key_V)
    assert window.state.attention_head == 0
    wait_result(qtbot, window, lambda r: r.options["attention_head"] == 0)
    qtbot.waitUntil(lambda: "head 0 on the frame" in live.panes["attention"].caption.text())

    qtbot.keyClick(window, Qt.Key.Key_A)  # heads -> rollout
    rolled = wait_result(qtbot, window, lambda r: r.views.values.get("attention_mode") == "rollout")
    assert rolled.views.values["attention_layout"].channels == 8  # blocks 0..7
    qtbot.keyClick(window, Qt.Key.Key_A)  # rollout -> off: not computed, pane hidden
    wait_result(qtbot, window, lambda r: r.options["attention"] == "off" and "attention" not in r.views.images)
    qtbot.waitUntil(lambda: not live.is_open("attention"))
    live.set_open("attention", True)  # opening the pane turns attention on again, as it was last
    assert window.state.attention == "rollout"


def test_a_snapshot_of_a_transformer_holds_its_attention(qtbot, make_window, video):
    window = make_window(video, model=VIT)
    wait_result(qtbot, window, lambda r: "attention" in r.views.images, timeout=120_000)
    with qtbot.waitSignal(window.worker.snapshot_saved, timeout=TIMEOUT_MS) as saved:
        qtbot.keyClick(window, Qt.Key.Key_S)
    folder = Path(saved.args[0])
    assert {"attention.png", "attention_overlay.png", "token_norms.png", "prefix_tokens.png"} <= {
        p.name for p in folder.iterdir()
    }
    arrays = np.load(folder / "activations.npz")
    assert arrays["activation"].shape == (192, 14, 14) and arrays["prefix_tokens"].shape == (1, 192)
    assert arrays["attention"].shape == (3, 14, 14)
    total = arrays["attention"].sum((1, 2)) + arrays["attention_prefix"][:, 0]
    np.testing.assert_allclose(total, 1.0, atol=1e-5)  # each head's softmax row, whole


def test_a_convolutional_network_shows_no_transformer_pane(qtbot, make_window, video):
    window = make_window(video)
    result = wait_result(qtbot, window)
    assert "attention" not in result.views.images and "token_norms" not in result.views.images
    assert not any(window.live.is_open(pane) for pane in ("attention", "token_norms", "prefix_tokens"))
    assert not {"attention", "token_norms", "prefix_tokens"} & set(window.live.views())
    qtbot.keyClick(window, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: "has no attention" in window.statusBar().currentMessage())


def test_a_block_whose_attention_has_no_map_says_why_and_keeps_no_other_blocks_map(qtbot, make_window, video):
    import tests.transformer_families  # noqa: F401  (registers timm:livevis_test_xcit)

    window = make_window(video, model="timm:livevis_test_xcit")
    shown = wait_result(qtbot, window, lambda r: "attention" in r.views.images, timeout=120_000)
    assert shown.views.layer.path == "cls_attn_blocks.0"  # class attention: a map
    live = window.live
    assert live.panes["attention"].heads.image_array() is not None
    window.state.layer = "blocks.1"  # cross-covariance attention: none
    wait_result(qtbot, window, lambda r: r.views.layer.path == "blocks.1")
    qtbot.waitUntil(
        lambda: (
            live.panes["attention"].caption.text()
            == "attention: XCiT attends across channels, not tokens: no attention map to show"
        )
    )
    assert live.panes["attention"].heads.image_array() is None and live.panes["attention"].overlay.image_array() is None
    assert live.is_open("attention") and live.is_open("token_norms")


def test_presentation_keeps_the_grid_and_the_selected_channel_large_whatever_else_is_open(qtbot, make_window, video):
    window = make_window(video, model="vit_mnist", weights="default")
    live = window.live
    wait_result(qtbot, window, lambda r: "attention" in r.views.images)
    window.state.update(backprop="guided", concepts=True)
    for pane in ("attention", "token_norms", "prefix_tokens", "backprop", "concepts", "unit"):
        live.set_open(pane, True)
    wait_result(qtbot, window, lambda r: "backprop" in r.views.images and "concepts" in r.views.images)
    qtbot.keyClick(window, Qt.Key.Key_F11)
    qtbot.waitUntil(window.isFullScreen)
    width = window.screen().geometry().width()
    for main in ("grid", "selected"):
        qtbot.waitUntil(lambda m=main: live.docks[m].isVisible() and live.docks[m].width() > 0.3 * width)
    # in sight: shown and within the tab (a tab behind another is moved out of it)
    in_sight = [pane for pane, dock in live.docks.items() if dock.isVisible() and live.rect().contains(dock.geometry())]
    columns = {live.docks[pane].geometry().x() for pane in in_sight}
    assert len(columns) == 3, in_sight
    others = {"backprop", "attention", "concepts"}
    tabbed = {pane for pane, dock in live.docks.items() if dock in live.tabifiedDockWidgets(live.docks["backprop"])}
    assert tabbed | {"backprop"} == others, "the other presented panes share one column, as tabs"
    assert not live.is_open("unit") and not live.is_open("token_norms"), "not presented"
    qtbot.keyClick(window, Qt.Key.Key_X)  # concepts off: the column keeps the others
    qtbot.waitUntil(lambda: not live.is_open("concepts"))
    assert live.docks["grid"].width() > 0.3 * width
