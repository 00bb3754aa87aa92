"""The README stays one that a newcomer reads in ten minutes, and its keys table is the app's own."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) <= 350


def test_the_keys_table_is_generated_from_the_actions_table():
    from livevis.app.window.actions import KEYS_BEGIN, markdown_table, with_keys_table

    text = README.read_text()
    assert with_keys_table(text) == text, "run: python -m livevis.app.window.actions --readme README.md"
    table = text.split(KEYS_BEGIN)[1]
    assert "| B | cycle the backprop pane" in table and "| Left, J |" in table and table.count("\n|") > 15
    assert markdown_table() in text
