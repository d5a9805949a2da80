"""The ledger read for people (core.ledger.history): one printable line per value, rows newest first, a filter."""

from __future__ import annotations

import json

import pytest

from orchestra.core.ledger.history import HistoryFilter, HistoryRow, gates_summary, history_rows, local_time, text


def test_text_is_one_printable_line_of_at_most_limit_characters() -> None:
    assert text("a\nb\tc\x1b[31md\u202ee") == "a b c�[31md�e"
    assert text("x" * 50, limit=10) == "x" * 9 + "…"
    assert (text(None), text(3), text(True), text({"k": [1]})) == ("", "3", "true", '{"k": [1]}')


@pytest.mark.parametrize("value", [None, 12, "yesterday", "9999-12-31T23:59:59Z", ["2026"]])
def test_a_time_that_cannot_be_read_is_shown_as_written(value: object) -> None:
    assert isinstance(local_time(value), str) and isinstance(local_time(value, short=False), str)


@pytest.mark.parametrize(("statuses", "stale", "shown"), [
    (["passed", "passed"], False, "2/2 ✓"), (["passed", "failed"], False, "1/2 ✗"),
    (["passed", "passed"], True, "2/2 stale"), (["passed", "running"], False, "1/2 …"), ([], False, ""),
])
def test_gates_summary(statuses: list[str], stale: bool, shown: str) -> None:
    assert gates_summary([{"status": status, "stale": stale} for status in statuses]) == shown


def test_rows_come_newest_first_with_reverted_accepts_marked_and_bad_lines_counted() -> None:
    lines = [json.dumps({"seq": 0, "action": "accept", "hash": "h0", "run": "r1"}).encode(), b"{not json",
             b"[1, 2]", json.dumps({"seq": 1, "action": "revert", "reverts": "h0", "run": "r1"}).encode()]
    rows, unreadable = history_rows(lines)
    assert [(row.seq, row.position) for row in rows] == [("1", 3), ("0", 0)] and unreadable == 2
    assert rows[1].reverted_by == "1" and rows[1].evidence == "↺ reverted"


def row(**entry: object) -> HistoryRow:
    return HistoryRow.of(0, entry)


@pytest.mark.parametrize(("typed", "matches"), [
    ("", True), ("spec:", True), ("SPEC:Do", True), ("spec:fix", False), ("agent:wri run:r7", True),
    ("actor:ada@example", True), ("action:accept", False), ("writer", True), ("writer nobody", False),
    ("nope:docs", False),  # not a column: a word, found nowhere
])
def test_the_filter(typed: str, matches: bool) -> None:
    entry = row(action="grant", spec="docs", agent="writer", run="r7", actor="Ada Lovelace <ada@example.com>")
    assert HistoryFilter.parse(typed).matches(entry) is matches
