"""Interventions: units switched off, set to their means or scaled inside the forward pass (everything after
the layer then shows the edited network), and which units matter for an answer on this frame.

with engine.edited([UnitEdit("features.10", (3, 17))]):
    result = engine.run(frame)
"""

from .edits import MODES, Edit, UnitEdit, format_channels, parse_channels
from .hooks import EditHooks, SeenMeans

__all__ = ["MODES", "Edit", "EditHooks", "SeenMeans", "UnitEdit", "format_channels", "parse_channels"]
