"""What an interactive agent's terminal shows: a pyte screen fed its output, read as lines and redrawn.

The supervisor keeps one TerminalScreen per interactive session. changed_lines() says which screen lines
are new since it was last asked, counting scrolls (the lines that moved up are not new), so the run's
event log gets what the screen shows without repeating the whole screen on every change; redraw() is the
bytes that paint the screen on a terminal that just attached.
"""

from __future__ import annotations

import pyte

# DEC private modes an application sets that a newly attached terminal must be told of, besides the cursor's
# visibility: application cursor keys, the alternate screen, mouse reporting, bracketed paste.
_REPLAYED_MODES = (1, 1049, 1000, 1002, 1003, 1006, 2004)
_SGR_FLAGS = (("bold", "1"), ("italics", "3"), ("underscore", "4"), ("blink", "5"), ("reverse", "7"),
              ("strikethrough", "9"))
_COLOURS = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")


class _Screen(pyte.Screen):
    """A pyte screen that counts how many lines scrolled off its top, and whose answers to the application's
    queries (device attributes, cursor position) go to answer(), which the owner points at the terminal's
    input while nobody attached answers them."""

    answer = staticmethod(lambda data: None)
    scrolled = 0

    def write_process_input(self, data: str) -> None:
        self.answer(data)

    def index(self) -> None:
        if self.cursor.y == self.lines - 1 and (self.margins is None or self.margins == (0, self.lines - 1)):
            self.scrolled += 1  # the whole screen moves up a line (within narrower margins only part of it)
        super().index()


class TerminalScreen:
    """A screen of rows x columns fed a terminal's output bytes."""

    def __init__(self, rows: int = 24, columns: int = 80) -> None:
        self.screen = _Screen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.shown: list[str] = [""] * rows  # the lines as changed_lines() last saw them
        self.changed = False

    @property
    def size(self) -> tuple[int, int]:
        return self.screen.lines, self.screen.columns

    def feed(self, data: bytes) -> None:
        self.stream.feed(data)
        self.changed = True

    def resize(self, rows: int, columns: int) -> None:
        """A new size; fewer rows lose the blank ones below the cursor first, as a terminal's do (pyte alone
        takes them off the top, which would lose what the agent said)."""
        screen = self.screen
        below_cursor = max(0, min(screen.lines - 1 - screen.cursor.y, screen.lines - rows))
        for y in range(screen.lines - below_cursor, screen.lines):
            screen.buffer.pop(y, None)
        screen.lines -= below_cursor
        screen.resize(rows, columns)
        self.changed = True

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def cursor_line(self) -> str:
        """The line the cursor is on: where a prompt waits for an answer."""
        return self.screen.display[self.screen.cursor.y].rstrip()

    def changed_lines(self) -> list[str]:
        """The non-blank lines that are new since the last call, top to bottom."""
        now = self.lines()
        before, self.shown, self.changed = self.shown, now, False
        shift, self.screen.scrolled = min(self.screen.scrolled, len(now)), 0
        kept = (before[shift:] + [""] * len(now))[:len(now)]  # resized: the rows that stayed keep their place
        return [line for i, line in enumerate(now) if line and kept[i] != line]

    def redraw(self) -> bytes:
        """Bytes that paint the whole screen as it is, with the cursor and the application's modes."""
        out = ["\x1b[0m\x1b[H\x1b[2J"]
        for mode in _REPLAYED_MODES:
            if (mode << 5) in self.screen.mode:
                out.append(f"\x1b[?{mode}h")
        for y in range(self.screen.lines):
            out.append(f"\x1b[{y + 1};1H{_row(self.screen.buffer[y], self.screen.columns)}\x1b[0m")
        cursor = self.screen.cursor
        out.append(f"\x1b[{cursor.y + 1};{cursor.x + 1}H")
        out.append("\x1b[?25l" if cursor.hidden else "\x1b[?25h")
        return "".join(out).encode("utf-8", "replace")


def _row(line: dict, columns: int) -> str:
    """One screen row as text with the SGR sequences its characters' attributes need."""
    cells = [(line[x].data, _sgr(line[x])) for x in range(columns) if line[x].data]  # "": a wide char's 2nd cell
    while cells and cells[-1] == (" ", ""):
        cells.pop()  # the screen was cleared first: plain blanks at the end need no painting
    out, current = [], ""
    for data, sgr in cells:
        if sgr != current:
            out.append(f"\x1b[0;{sgr}m" if sgr else "\x1b[0m")
            current = sgr
        out.append(data)
    return "".join(out)


def _sgr(char: pyte.screens.Char) -> str:
    codes = [code for name, code in _SGR_FLAGS if getattr(char, name)]
    codes += _colour(char.fg, 30) + _colour(char.bg, 40)
    return ";".join(codes)


def _colour(colour: str, base: int) -> list[str]:
    """SGR codes for one of pyte's colours: a name, a bright name, or six hex digits."""
    if colour == "default":
        return []
    bright = colour.startswith("bright")
    name = colour[6:] if bright else colour
    if name in _COLOURS:
        return [str(base + 60 * bright + _COLOURS.index(name))]
    if len(colour) == 6:
        try:
            red, green, blue = (int(colour[i:i + 2], 16) for i in (0, 2, 4))
        except ValueError:
            return []
        return [str(base + 8), "2", str(red), str(green), str(blue)]
    return []
