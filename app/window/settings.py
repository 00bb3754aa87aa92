"""The settings file: read with every value checked, so a bad one can never lock the app out.

A value that does not parse or is out of range falls back to its default and is named in `reset`, for
the window to say so; the bad value is not written back. A file given with `--settings` that exists but
is not a livevis settings file is refused (`SettingsError`), never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings, QStandardPaths

from livevis import views
from livevis.models.errors import LivevisError
from livevis.state import DRAWING_DEFAULTS, LiveState, check_option

FORMAT_KEY = "format"
FORMAT = "livevis-settings-1"


def default_snapshot_dir() -> Path:
    """The user's Pictures folder (home where there is none), not the working directory, which for
    an app started from a desktop menu may be / or read-only."""
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return Path(pictures or Path.home()) / "livevis"


class SettingsError(LivevisError):
    """A settings file that livevis must not read or write."""


def _text(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not text: {value!r}")
    return value


def _number(kind: type) -> Callable:
    def parse(value):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"not a number: {value!r}")
        return kind(value)

    return parse


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0"):
        return False
    raise ValueError(f"not true or false: {value!r}")


def _listed_model(value) -> str:
    """A listed model's name only. A settings file must never make livevis import code: a user's own model
    (`package.module:factory`, a model file) loads only when given on the command line."""
    from livevis.models import model_names

    name = _text(value)
    if name not in model_names():
        raise ValueError(f"not a listed model: {name!r}")
    return name


def _url_list(value) -> list[str]:
    """Stream URLs, never with a password: one that was written in by hand is dropped here, and one that does
    not parse is left out (it could never open, and where its password would end cannot be known)."""
    from livevis.app.sources.network import BadStreamUrl, is_stream_url, without_password

    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not all(isinstance(u, str) and is_stream_url(u) for u in urls):
        raise ValueError("not a list of stream URLs")
    kept = []
    for url in urls:
        try:
            kept.append(without_password(url))
        except BadStreamUrl:
            pass
    return kept


def _camera_modes(value) -> dict[str, str]:
    """{camera name: 'WIDTHxHEIGHT@FPS'} as JSON text."""
    from livevis.app.sources.cameras import CameraMode
    from livevis.models.errors import InputError

    try:
        modes = json.loads(value) if isinstance(value, str) else None
        if not isinstance(modes, dict) or not all(isinstance(v, str) for v in modes.values()):
            raise ValueError
        return {str(name): str(CameraMode.parse(text)) for name, text in modes.items()}
    except (ValueError, InputError):
        raise ValueError(f"not camera modes: {value!r}") from None


def _parsed(parse: Callable[[str], object]) -> Callable:
    """A view option's value as the settings file holds it (text), parsed as its flag is."""

    def read(value):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"not a value: {value!r}")
        return parse(value) if isinstance(value, str) else value

    return read


def _saved_by_qt(what: str) -> Callable:
    """Bytes Qt saved (a window's geometry, the panes' layout), as Qt reads them back."""

    def parse(value) -> QByteArray:
        if not isinstance(value, QByteArray) or value.isEmpty():
            raise ValueError(f"not a saved {what}")
        return value

    return parse


@dataclass(frozen=True)
class Setting:
    default: object
    parse: Callable
    check: str = ""
    """The live state's option this value must be valid for (see `livevis.state.check_option`)."""
    dump: Callable | None = None
    """How the value is written, where QSettings cannot write it as it is."""
    quoted: bool = True
    """Whether a bad stored value may be quoted when it is reset (not where it may hold a password)."""


SCHEMA: dict[str, Setting] = {
    "source": Setting("", _text),
    "model": Setting("", _listed_model),
    "layer": Setting("", _text),
    "channel": Setting(0, _number(int), "channel"),
    "colormap": Setting(DRAWING_DEFAULTS["colormap"], _text, "colormap"),
    "norm": Setting(DRAWING_DEFAULTS["norm"], _text, "norm"),
    "gamma": Setting(DRAWING_DEFAULTS["gamma"], _number(float), "gamma"),
    "boost": Setting(DRAWING_DEFAULTS["boost"], _number(float), "boost"),
    "overlay_mode": Setting(DRAWING_DEFAULTS["overlay_mode"], _text, "overlay_mode"),
    "opacity": Setting(DRAWING_DEFAULTS["opacity"], _number(float), "opacity"),
    "mirror": Setting(True, _flag),
    "snapshot_dir": Setting("", _text),
    "geometry": Setting(None, _saved_by_qt("window geometry")),
    "layout": Setting(None, _saved_by_qt("pane layout")),
    "recent_urls": Setting([], _url_list, quoted=False),
    "camera_modes": Setting({}, _camera_modes, dump=lambda modes: json.dumps(modes, sort_keys=True)),
}


SCHEMA |= {
    option.name: Setting(option.default, _parsed(option.parse), option.name)
    for option in views.options().values()
    if option.persist and option.live
}
"""...and each view's options that ask to be kept (the backprop mode, the number of concepts)."""

PERSISTED_OPTIONS = tuple(name for name in SCHEMA if name in DRAWING_DEFAULTS or views.option(name) is not None)
"""The drawing and view options kept across starts (a class picked for Grad-CAM is not)."""


class SettingsStore:
    """Typed, checked access to one QSettings file (the user's, or the one `--settings` names)."""

    def __init__(self, path: str | Path | None = None):
        if path is None:
            self._qt = QSettings("livevis", "livevis")
        else:
            path = Path(path)
            _refuse_foreign(path)
            self._qt = QSettings(str(path), QSettings.Format.IniFormat)
        self.reset: list[str] = []
        """The keys whose stored values were bad and fell back to their defaults, with what they were."""
        self.first_launch = not self._qt.contains(FORMAT_KEY)
        """livevis never saved its settings here: the window opens on what shows best what it is for."""
        self.values = self._read()

    @property
    def file_name(self) -> str:
        return self._qt.fileName()

    def _read(self) -> dict:
        values = {}
        for key, setting in SCHEMA.items():
            stored = self._qt.value(key)
            if stored is None or stored == "":
                values[key] = setting.default
                continue
            try:
                value = setting.parse(stored)
                if setting.check:
                    check_option(setting.check, value)
            except (TypeError, ValueError):
                quoted = setting.quoted and not isinstance(stored, QByteArray)
                self.reset.append(f"{key} (was {stored!r})" if quoted else key)
                value = setting.default
            values[key] = value
        return values

    def restored_state(self, layer: str | None = None) -> LiveState:
        """The live state as it was left; a layer given (on the command line) starts on channel 0."""
        values = {name: self.values[name] for name in PERSISTED_OPTIONS}
        return LiveState(layer=layer or self.values["layer"], channel=0 if layer else self.values["channel"], **values)

    def keep_state(self, state: LiveState) -> None:
        for name in (*PERSISTED_OPTIONS, "layer", "channel"):
            self.values[name] = getattr(state, name)

    def snapshot_folder(self) -> Path:
        """Where snapshots and recordings go: the folder the settings name, else Pictures/livevis."""
        return Path(self.values["snapshot_dir"] or default_snapshot_dir())

    def get(self, key: str):
        return self.values[key]

    def set(self, key: str, value) -> None:
        self.values[key] = value

    def save(self) -> None:
        self._qt.setValue(FORMAT_KEY, FORMAT)
        for key, value in self.values.items():
            dump = SCHEMA[key].dump if key in SCHEMA else None
            if value is None:
                self._qt.remove(key)  # a bad stored value is not kept either
            else:
                self._qt.setValue(key, dump(value) if dump else value)
        self._qt.sync()


def _refuse_foreign(path: Path) -> None:
    """A file that exists must be one livevis wrote (or an empty one); anything else is the user's."""
    if not path.exists():
        return
    if not path.is_file():
        raise SettingsError(f"--settings {path} is not a regular file; give a settings file path")
    if path.stat().st_size == 0:
        return
    probe = QSettings(str(path), QSettings.Format.IniFormat)
    keys = set(probe.allKeys())
    ours = probe.value(FORMAT_KEY) == FORMAT or (keys and keys <= {FORMAT_KEY, *SCHEMA})
    # a file livevis wrote may hold the options of a plug-in uninstalled since: it is still livevis's
    if probe.status() != QSettings.Status.NoError or not ours:
        raise SettingsError(
            f"{path} exists and is not a livevis settings file; livevis will not overwrite it. "
            "Give a new path, or one livevis wrote"
        )
