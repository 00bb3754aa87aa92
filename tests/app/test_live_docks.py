"""The Live tab's panes as docks on a 1600 x 1000 screen (the tests' virtual one): every pane open keeps the
selected channel on the frame useful, layouts survive a restart, the View menu reopens panes and resets
the layout, and the presentation mode (F11) comes and goes with every key working."""

from __future__ import annotations

from PyQt6.QtCore import QRect, QSettings, Qt
from PyQt6.QtWidgets import QApplication

from livevis.app.tabs.live import layout_version, pane_specs
from livevis.app.window.main_window import first_launch_geometry
from tests.app.conftest import TIMEOUT_MS, wait_result

USEFUL = 0.4
"""The least share of its size alone that the frame with the selected channel keeps with every pane open."""


def shown_overlay(qtbot, window) -> tuple[float, float]:
    """The size the frame with the selected channel is drawn at, once a frame rendered for the view's size
    is shown."""
    overlay = window.live.panes["selected"].overlay
    wait_result(
        qtbot, window, lambda r: r.options.display_size == overlay.render_size() and r.views.images["overlay"].size > 0
    )
    qtbot.waitUntil(lambda: overlay.image_array() is window.last_result.views.images["overlay"])
    rect = overlay.image_rect()
    return rect.width(), rect.height()


def ready(qtbot, make_window, video):
    """A window showing frames, and its Live tab."""
    window = make_window(video)
    wait_result(qtbot, window)
    return window, window.live


def docked_places(live) -> dict:
    """Where each pane in sight is."""
    return {pane_id: dock.geometry() for pane_id, dock in live.docks.items() if dock.isVisible()}


PANES = pane_specs()


def open_panes(window) -> set[str]:
    return {spec.id for spec in PANES if window.live.is_open(spec.id)}


def test_a_first_launch_fills_most_of_the_screen():
    assert first_launch_geometry(QRect(0, 0, 1600, 1000)) == QRect(80, 50, 1440, 900)
    assert first_launch_geometry(QRect(1920, 30, 1280, 770)) == QRect(1984, 68, 1152, 693), "a second screen, a bar"


def test_every_pane_open_keeps_the_selected_channel_on_the_frame_useful(qtbot, make_window, video):
    screen = QApplication.primaryScreen()
    assert screen.geometry() == QRect(0, 0, 1600, 1000), "the tests' virtual screen (tests/offscreen_screen.json)"
    window = make_window(video)
    assert window.geometry() == first_launch_geometry(screen.availableGeometry())
    live = window.live
    assert open_panes(window) == {"input", "grid", "selected", "predictions", "layers"}, "the default layout"
    for spec in PANES:
        live.set_open(spec.id, spec.id == "selected")
    qtbot.waitUntil(lambda: open_panes(window) == {"selected"})
    alone_w, alone_h = shown_overlay(qtbot, window)
    assert alone_h > 0.7 * live.height(), "alone, it takes the tab"
    for spec in PANES:
        live.set_open(spec.id, True)
    qtbot.waitUntil(lambda: open_panes(window) == {spec.id for spec in PANES})
    assert window.state.backprop == "guided", "opening the backprop pane turns backprop on"
    result = wait_result(qtbot, window, lambda r: "backprop" in r.views.images)
    assert result.views.images["backprop"].size
    width, height = shown_overlay(qtbot, window)
    assert width >= USEFUL * alone_w and height >= USEFUL * alone_h, (width, height, alone_w, alone_h)
    shown = [spec.id for spec in PANES if live.docks[spec.id].isVisible()]
    assert shown == [spec.id for spec in PANES], "all in sight at once, none tabbed away"
    assert window.geometry() == first_launch_geometry(screen.availableGeometry()), "the window did not grow"


def test_a_pane_with_no_room_left_is_tabbed_rather_than_squeezing_the_selected_channel(qtbot, make_window, video):
    window, live = ready(qtbot, make_window, video)
    live.set_open("unit", True)
    qtbot.waitUntil(lambda: live.docks["unit"].isVisible())
    # the selected channel's column has room for one more pane; a second one there would squeeze it
    live.splitDockWidget(live.docks["selected"], live.docks["backprop"], Qt.Orientation.Vertical)
    live.docks["backprop"].hide()
    useful = live.panes["selected"].stack.minimumHeight()
    assert useful == round(0.4 * live.height())
    live.set_open("backprop", True)
    qtbot.waitUntil(lambda: live.is_open("backprop"))
    assert live.panes["selected"].stack.height() >= useful
    assert window.height() == first_launch_geometry(window.screen().availableGeometry()).height()


def test_a_saved_layout_comes_back_after_a_restart(qtbot, make_window, video, tmp_path):
    window, live = ready(qtbot, make_window, video)
    live.set_open("predictions", False)
    live.set_open("unit", True)
    live.tabifyDockWidget(live.docks["input"], live.docks["layers"])
    live.resizeDocks([live.docks["grid"]], [600], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: live.docks["grid"].width() > 550)
    before = open_panes(window)
    grid_width = live.docks["grid"].width()
    window.close()

    again = make_window(video, settings_file=tmp_path / "settings0.ini")
    wait_result(qtbot, again)
    live = again.live
    assert open_panes(again) == before == {"input", "grid", "selected", "layers", "unit"}
    assert live.docks["layers"] in live.tabifiedDockWidgets(live.docks["input"])
    qtbot.waitUntil(lambda: abs(live.docks["grid"].width() - grid_width) <= 2)
    assert "other panes" not in again.statusBar().currentMessage()


def test_a_layout_saved_for_other_panes_is_ignored_for_the_default(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    wait_result(qtbot, window)
    window.live.set_open("input", False)
    foreign = window.live.saveState(layout_version(PANES) + 1)  # as saved by a version with other panes
    window.close()
    settings = QSettings(str(tmp_path / "settings0.ini"), QSettings.Format.IniFormat)
    settings.setValue("layout", foreign)
    settings.sync()

    again = make_window(video, settings_file=tmp_path / "settings0.ini")
    wait_result(qtbot, again)
    assert open_panes(again) == {"input", "grid", "selected", "predictions", "layers"}, "the default layout"
    assert "made for other panes" in again.statusBar().currentMessage()


def test_a_closed_pane_comes_back_from_the_view_menu_and_reset_layout_restores_the_default(qtbot, make_window, video):
    window, live = ready(qtbot, make_window, video)
    default = docked_places(live)
    panes_menu = next(a.menu() for a in window.menuBar().actions()[1].menu().actions() if a.text() == "Panes")
    entries = {action.text(): action for action in panes_menu.actions()}
    assert list(entries) == [spec.title for spec in PANES]
    live.docks["grid"].close()  # its title bar's close button
    qtbot.waitUntil(lambda: not live.is_open("grid") and not entries["Channels of the layer"].isChecked())
    entries["Channels of the layer"].trigger()
    qtbot.waitUntil(lambda: live.docks["grid"].isVisible())
    assert entries["Channels of the layer"].isChecked()
    wait_result(qtbot, window, lambda r: r.views.images["grid"].size > 0)

    live.docks["selected"].setFloating(True)
    live.set_open("layers", False)
    live.set_open("unit", True)
    window.actions_by_name["reset_layout"].trigger()
    qtbot.waitUntil(lambda: docked_places(live) == default)
    assert not live.docks["selected"].isFloating()


def test_presentation_mode_shows_the_grid_and_the_selected_channel_large_and_every_key_works(qtbot, make_window, video):
    window, live = ready(qtbot, make_window, video)
    before = docked_places(live)
    normal_geometry = window.geometry()
    normal_w, normal_h = shown_overlay(qtbot, window)

    qtbot.keyClick(window, Qt.Key.Key_F11)
    qtbot.waitUntil(window.isFullScreen)
    assert window.geometry() == window.screen().geometry()
    assert not window.menuBar().isVisible() and not window.statusBar().isVisible()
    assert not window.tabs.tabBar().isVisible()
    qtbot.waitUntil(lambda: list(docked_places(live)) == ["grid", "selected"])
    width, height = shown_overlay(qtbot, window)
    assert width > normal_w and height > normal_h, "larger than in the window"
    assert live.docks["grid"].width() > before["grid"].width()

    qtbot.keyClick(window, Qt.Key.Key_Right)  # keys work as ever
    wait_result(qtbot, window, lambda r: r.views.channel == 1)
    qtbot.keyClick(window, Qt.Key.Key_B)  # backprop joins the presentation while it is on
    qtbot.waitUntil(lambda: live.docks["backprop"].isVisible())
    wait_result(qtbot, window, lambda r: "backprop" in r.views.images)
    for _ in range(5):  # grad, deconv, guided, gradcam, eigencam, then off
        qtbot.keyClick(window, Qt.Key.Key_B)
    qtbot.waitUntil(lambda: not live.docks["backprop"].isVisible())
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.isFullScreen() and window.geometry() == normal_geometry, timeout=TIMEOUT_MS)
    assert window.menuBar().isVisible() and window.statusBar().isVisible() and window.tabs.tabBar().isVisible()
    qtbot.waitUntil(lambda: docked_places(live) == before)

    qtbot.keyClick(window, Qt.Key.Key_F11)  # F11 leaves it too
    qtbot.waitUntil(window.isFullScreen)
    qtbot.keyClick(window, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: not window.isFullScreen() and window.geometry() == normal_geometry, timeout=TIMEOUT_MS)
    assert not window.actions_by_name["leave_presentation"].isEnabled(), "Esc is free outside the presentation"


def test_keys_reach_the_window_from_a_floating_pane(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    dock = window.live.docks["selected"]
    dock.setFloating(True)
    qtbot.waitUntil(dock.isVisible)
    dock.activateWindow()
    qtbot.waitUntil(dock.isActiveWindow)
    qtbot.keyClick(dock, Qt.Key.Key_Right)
    wait_result(qtbot, window, lambda r: r.views.channel == 1)


def test_panes_stay_open_behind_another_tab_and_closing_backprop_turns_it_off(qtbot, make_window, video):
    window, live = ready(qtbot, make_window, video)
    window.state.backprop = "guided"
    qtbot.waitUntil(lambda: live.docks["backprop"].isVisible())
    opened = open_panes(window)
    window.tabs.setCurrentWidget(window.view_tabs["network"].view)
    qtbot.waitUntil(lambda: not live.isVisible())
    assert open_panes(window) == opened and window.state.backprop == "guided", "hidden with their tab, not closed"
    window.tabs.setCurrentWidget(live)
    qtbot.waitUntil(lambda: all(live.docks[pane].isVisible() for pane in opened))
    live.docks["backprop"].close()  # its close button
    qtbot.waitUntil(lambda: window.state.backprop == "off")
    wait_result(qtbot, window, lambda r: "backprop" not in r.options.views)
