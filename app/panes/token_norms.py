"""The token-norms pane: the L2 norm of every token on the frame, the high-norm outliers ringed."""

from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QWidget

from livevis.app.panes.base import Pane, PaneServices, column
from livevis.views import ViewSpec
from livevis.widgets.image_view import ImageView


class TokenNormsPane(Pane):
    """The L2 norm of every token of the selected layer on the frame, high-norm outliers ringed, and the
    prefix tokens' norms (registers take the outliers' role in models that have them)."""

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.caption = QLabel("token norms")
        self.caption.setWordWrap(True)
        self.image = ImageView(placeholder="token norms (a transformer's)")
        self.setLayout(column(self.image, self.caption))
        self.set_title("token norms")

    def show_result(self, result, model):
        views = result.views
        image = views.images.get("token_norms")
        if image is None:
            self.caption.setText(f"{views.layer.name} is not a layer of tokens")
            return
        self.image.set_image(image, views.frame_size)
        values = views.values
        outliers = values.get("token_outliers", [])
        text = f"median norm {values.get('token_norm_median', 0.0):.3g}; "
        text += (
            f"{len(outliers)} high-norm outlier{'s' if len(outliers) != 1 else ''} ringed"
            if outliers
            else ("no high-norm outlier")
        )
        prefix = values.get("prefix_norms")
        if prefix is not None and model is not None:
            names = model.prefix or [f"prefix {i}" for i in range(len(prefix))]
            text += "; " + ", ".join(f"{name} {norm:.3g}" for name, norm in zip(names, prefix, strict=False))
        self.caption.setText(text)
        self.set_title(f"token norms at {views.layer.name}")
