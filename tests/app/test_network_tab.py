"""The Network tab: every layer at once for the live frame, only the rows in sight computed."""

from __future__ import annotations

from PyQt6.QtCore import Qt

from tests.app.conftest import TIMEOUT_MS, wait_result


def test_the_network_tab_draws_the_rows_in_sight_and_a_click_selects_a_map(qtbot, make_window, video):
    window = make_window(video)
    first = wait_result(qtbot, window)
    assert "network" not in first.options.views, "not computed while the tab is hidden"
    overview = window.view_tabs["network"].view
    window.tabs.setCurrentWidget(overview)
    qtbot.waitUntil(lambda: bool(overview.visible_paths()), timeout=TIMEOUT_MS)
    in_sight = overview.visible_paths()
    result = wait_result(qtbot, window, lambda r: set(r.views.values.get("network_rows", {})) == set(in_sight))
    assert len(in_sight) < len(window.model.layers), "only the rows in sight are computed"
    qtbot.waitUntil(lambda: all(overview.row_image(path) is not None for path in in_sight), timeout=TIMEOUT_MS)
    image, layout = result.views.values["network_rows"][in_sight[0]]
    assert image.shape == (layout.height, layout.width, 3)
    overview.verticalScrollBar().setValue(overview.verticalScrollBar().maximum())
    qtbot.waitUntil(lambda: overview.visible_paths() != in_sight, timeout=TIMEOUT_MS)
    last = overview.visible_paths()
    wait_result(qtbot, window, lambda r: set(r.options["network_rows"]) == set(last))
    overview.verticalScrollBar().setValue(0)
    qtbot.waitUntil(lambda: overview.visible_paths() == in_sight, timeout=TIMEOUT_MS)
    target = next(path for path in in_sight if path.startswith("features"))
    centre = overview.tile_rect(target, 2).center().toPoint()  # in the scrolled canvas's coordinates
    qtbot.mouseClick(overview.widget(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is window.live, timeout=TIMEOUT_MS)
    assert (window.state.layer, window.state.channel) == (target, 2)
    wait_result(qtbot, window, lambda r: r.views.layer.path == target and "network" not in r.options.views)
