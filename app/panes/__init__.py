"""The Live tab's panes: each shows what one view computed (see `livevis.views`); the layers and unit panes
serve the selection."""
