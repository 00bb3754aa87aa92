"""The main window and what frames the panes: menus and keys, the toolbar's options, the status line, the
settings file, choosing sources and models."""
