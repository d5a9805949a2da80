"""The fleet's grid: its containers, and its shape (how many columns, how tall each pane is) for a number of
runs."""

from __future__ import annotations

import math

from textual.containers import Grid, Horizontal, VerticalScroll

MIN_PANE_WIDTH = 38
MIN_PANE_HEIGHT = 8
USEFUL_WIDTH = (60, 100)  # output lines are rarely longer: a wider pane is empty space, a narrower one cuts them
USEFUL_HEIGHT = 12        # rows below this leave little room for the output's tail


def grid_shape(count: int, width: int, height: int) -> tuple[int, int]:
    """Columns and pane height for count panes: panes about as wide as output lines are, as tall as the
    terminal allows, and few empty grid cells."""
    if count == 0:
        return 1, height
    max_columns = max(1, min(count, width // MIN_PANE_WIDTH))

    def cost(columns: int) -> float:
        rows = math.ceil(count / columns)
        pane_width, pane_height = width / columns, height / rows
        narrow, wide = USEFUL_WIDTH
        overflow = max(0, rows * MIN_PANE_HEIGHT - height)  # rows of panes that would have to be scrolled to
        return ((rows * columns - count) / count + max(0.0, narrow - pane_width) / narrow
                + max(0.0, pane_width - wide) / wide + max(0.0, USEFUL_HEIGHT - pane_height) / USEFUL_HEIGHT
                + (1 + overflow / height if overflow else 0))

    columns = min(range(1, max_columns + 1), key=cost)
    rows = math.ceil(count / columns)
    return columns, max(MIN_PANE_HEIGHT, height // rows)


# The containers the panes sit in draw nothing of their own (no border, no text): marked blank, Textual fills
# their rows with their background directly instead of styling each row. Three nested containers the height
# of the terminal were a fifth of a 50-run fleet's first frame.
class Body(Horizontal):
    BLANK = True


class FleetScroll(VerticalScroll):
    BLANK = True


class PaneGrid(Grid):
    BLANK = True
