"""The commands: `livevis render`, `figure`, `mine`, `dream`, `embed`, `bench`, `layers`, `models`. No Qt here:
each runs where there is no display, and a test imports them with PyQt6 unimportable."""
