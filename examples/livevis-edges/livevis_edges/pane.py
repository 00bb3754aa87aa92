"""The edges pane: the Sobel magnitude of the selected channel's map, on the frame."""

from __future__ import annotations

from livevis.app.panes.base import Pane, column
from livevis.widgets.image_view import ImageView


class EdgesPane(Pane):
    def __init__(self, state, spec, services, parent=None):
        super().__init__(state, spec, services, parent)
        self.image = ImageView(placeholder="where the selected channel's map changes")
        self.probe(self.image)  # a click asks which units fire there, as on the other pictures of the frame
        self.setLayout(column(self.image))
        self.set_title("edges of the selected channel (e: colours)")

    def show_result(self, result, model):
        views = result.views
        image = views.images.get("edges")
        if image is None:
            self.set_title(f"edges: {views.layer.name} has no maps")
            return
        self.image.set_image(image, views.frame_size)
        self.set_title(f"edges of {views.layer.name}:{views.channel} ({result.options['edges_colormap']})")
