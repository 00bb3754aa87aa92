"""The network view: every channel of each layer asked for, one row per layer, as the course notes draw a
network; the Network tab asks for the rows in sight."""

from __future__ import annotations

from livevis.views import Option, ViewSpec


def _paths(value) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


NETWORK = ViewSpec(
    name="network",
    producer="livevis.models.overview:NetworkProducer",
    title="Network",
    tab="livevis.app.tabs.network:NetworkTab",
    options=(Option("network_rows", (), check=_paths, expects="a tuple of layer paths", live=False),),
    description="every channel of the layers asked for, one row each (the Network tab)",
)
VIEWS = (NETWORK,)
