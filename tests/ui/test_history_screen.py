"""The History screen: every ledger entry newest first, filtered as typed, its evidence on enter, z to revert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Input

from orchestra.core.fleet import Fleet
from orchestra.ui.app import OrchestraApp
from orchestra.ui.dialogs import TextPrompt
from orchestra.ui.history_detail import HistoryDetail
from orchestra.ui.history_screen import HistoryScreen
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for

ADA = "Ada Lovelace <ada@example.com>"
COLUMNS = ("seq", "time", "action", "run", "spec", "agent", "actor", "evidence")


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    """The fixture fleet with r2 accepted (#0) and r3 rejected (#1), by the test's git identity, then Ada's
    grant of autonomy on another spec (#2)."""
    fleet = build_fleet(tmp_path)
    fleet.accept("r2")
    fleet.reject("r3", "touches README")
    fleet.ledger.append({"action": "grant", "decision": "d-grant", "spec": "docs", "agent": "writer",
                         "level": "auto", "actor": ADA, "reason": "ten clean runs", "streak": 10})
    return fleet


def make_app(fleet: Fleet) -> OrchestraApp:
    return OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)


def rows(app: OrchestraApp) -> list[dict[str, str]]:
    """The table's rows as shown, top first, as {column: plain text}."""
    table = app.screen.query_one("#entries", DataTable)
    return [dict(zip(COLUMNS, map(str, table.get_row_at(index)))) for index in range(table.row_count)]


def seqs(app: OrchestraApp) -> list[str]:
    return [row["seq"] for row in rows(app)]


async def open_history(app: OrchestraApp, pilot, count: int) -> HistoryScreen:
    """Press the history key and wait for count entries to be read."""
    await pilot.press(app.keymap.get("app.history", "y"))
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and len(app.screen.rows) == count,
                   f"the history of {count} entries")
    return app.screen


async def move_to(app: OrchestraApp, pilot, seq: str) -> None:
    app.screen.query_one("#entries", DataTable).move_cursor(row=seqs(app).index(seq))
    await pilot.pause()


def write_line(fleet: Fleet, entry: dict) -> None:
    """Add a line to the ledger as if by hand (the fields the ledger sets itself too): unchained."""
    with fleet.ledger.path.open("ab") as ledger:
        ledger.write(json.dumps(entry).encode() + b"\n")


def field(detail: str, label: str) -> str:
    """The value after label on the evidence's line for it ("" when there is none)."""
    found = [line.strip()[len(label):].strip() for line in detail.splitlines() if line.strip().startswith(label)]
    return found[0] if found else ""


def notices(app: OrchestraApp) -> str:
    return "\n".join(str(notification.message) for notification in app._notifications)


async def test_y_lists_every_entry_newest_first_with_its_evidence(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 3)
        shown = rows(app)
        assert [(r["seq"], r["action"], r["run"]) for r in shown] == [("2", "grant", ""), ("1", "reject", "r3"),
                                                                      ("0", "accept", "r2")]
        assert shown[2]["evidence"] == "3/3 ✓" and shown[2]["actor"] == "Test Conductor"
        assert shown[1]["evidence"] == "0/2 ✗" and (shown[1]["spec"], shown[1]["agent"]) == ("fix-mean", "tester")
        assert shown[0]["evidence"] == "→ auto ten clean runs" and shown[0]["actor"] == "Ada Lovelace"
        assert "3 entries, newest first" in str(app.screen.query_one("#title").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen), "the history to close")


async def test_the_palette_opens_the_history(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"history")
        await wait_for(pilot, lambda: any(str(option.prompt).startswith("History") for option in
                                          app.screen.query_one("CommandList").options), "History to be offered")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and len(app.screen.rows) == 3,
                       "the history")


@pytest.mark.parametrize(("typed", "expected"), [
    ("spec:docs", ["2"]),
    ("spec:FIX", ["1", "0"]),
    ("agent:test", ["1"]),
    ("actor:ada", ["2"]),
    ("actor:conductor@example", ["1", "0"]),
    ("action:rej", ["1"]),
    ("run:r2", ["0"]),
    ("writer", ["2"]),  # a plain word: in any column
    ("fixer", ["0"]),
    ("fix-mean tester", ["1"]),  # every word must be found
    ("action:accept run:r3", []),
])
async def test_the_filter_narrows_by_each_qualifier_and_by_words(fleet: Fleet, typed: str,
                                                                   expected: list[str]) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 3)
        await pilot.press("slash", *typed)
        await wait_for(pilot, lambda: seqs(app) == expected, f"only {expected} for {typed!r}; shown: {seqs(app)}")
        assert f"{len(expected)} of 3 entries match" in str(app.screen.query_one("#title").render())
        await pilot.press("escape")  # clears the filter, back to the table
        assert app.screen.query_one("#filter", Input).value == "" and seqs(app) == ["2", "1", "0"]
        assert isinstance(app.screen, HistoryScreen) and app.screen.query_one("#entries").has_focus
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen), "the history to close")


async def test_enter_shows_the_gates_with_their_trees_the_diff_hash_and_the_signature(fleet: Fleet) -> None:
    accept = fleet.ledger.entries()[0]
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 3)
        await move_to(app, pilot, "0")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetail), "the entry's evidence")
        detail = str(app.screen.query_one("#detail").render())
        for gate in accept["gates"]:
            line = field(detail, f"✓ {gate['name']} ")
            assert line.startswith("passed") and line.endswith(f"tree {gate['tree'][:10]}"), line
        assert field(detail, "diff sha256") == accept["diff_sha256"] and field(detail, "hash") == accept["hash"]
        assert field(detail, "signature") == "unsigned (no signing key)"
        assert field(detail, "actor") == "Test Conductor <conductor@example.test>"
        assert field(detail, "files") == "1 changed: calc/stats.py"
        assert field(detail, "merge") == accept["merge_commit"] and field(detail, "run") == "r2"
        assert str(app.screen.query_one("#title").render()).startswith("#0  accept  ")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), "back to the list")


async def test_an_auto_accept_names_who_granted_it_and_a_demotion_says_why(fleet: Fleet) -> None:
    fleet.ledger.append({"action": "accept", "decision": "d-auto", "run": "r9", "agent": "fixer", "spec": "fix-mean",
                         "actor": "policy", "autonomy": "auto", "granted_by": ADA, "grant": "g" * 64,
                         "gates": [{"name": "pytest", "kind": "command", "status": "passed", "tree": "a" * 40},
                                   {"name": "review-claude", "kind": "review", "status": "passed",
                                    "tree": "a" * 40, "verdict": "approved", "reviewer": {"agent": "claude"}}]})
    fleet.ledger.append({"action": "revoke", "decision": "d-demote", "spec": "fix-mean", "agent": "fixer",
                         "level": "manual", "actor": "policy", "demoted": True, "cause": "revert",
                         "reason": "r9 was reverted", "run": "r9", "granted_by": ADA})
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 5)
        demoted, auto = rows(app)[:2]
        assert auto["action"] == "accept (auto)" and auto["evidence"] == "2/2 ✓ approved"
        assert auto["actor"] == "policy (granted by Ada Lovelace)"
        assert demoted["action"] == "revoke (demoted)" and demoted["evidence"] == "→ manual revert: r9 was reverted"
        await pilot.press("slash", *"action:auto")
        await wait_for(pilot, lambda: seqs(app) == ["3"], "only the auto-accept")
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetail), "its evidence")
        detail = str(app.screen.query_one("#detail").render())
        assert f"policy (granted by {ADA})" in detail and "review-claude  approved  agent claude" in detail
        assert field(detail, "grant").startswith("g" * 64) and field(detail, "autonomy").startswith("auto")


async def test_z_on_an_accept_asks_why_reverts_and_the_revert_appears(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 3)
        await move_to(app, pilot, "0")
        await pilot.press("z")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), "the revert's question")
        assert "Revert r2 (fixer)" in app.screen.title_text
        await pilot.press(*"broke prod", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and seqs(app)[0] == "3",
                       "the revert's entry in the history", timeout=20)
        assert rows(app)[0]["action"] == "revert" and rows(app)[0]["run"] == "r2"
        assert rows(app)[-1]["evidence"] == "3/3 ✓ ↺ reverted"  # the accept it undid
        assert app.screen.row_under_cursor().seq == "0"  # read again, the cursor stays on its entry
    assert fleet.get("r2").reverted["reason"] == "broke prod"


async def test_z_in_the_evidence_of_an_accept_asks_why(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 3)
        await move_to(app, pilot, "0")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetail), "the entry's evidence")
        await pilot.press("z")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), "the revert's question")
        assert "Revert r2 (fixer)" in app.screen.title_text


@pytest.mark.parametrize(("seq", "said"), [
    ("1", "Run r3 was rejected: only an accepted run's merge can be reverted"),
    ("2", "Only an accepted, unreverted run can be reverted: entry #2 records a grant, of no run"),
    ("3", "Run r9 cannot be reverted: There is no run 'r9'"),
    ("4", "Entry #4 records a redirect of r2: z on its accept entry reverts it"),
])
async def test_z_elsewhere_says_why_it_cannot_revert(fleet: Fleet, seq: str, said: str) -> None:
    fleet.ledger.append({"action": "accept", "run": "r9", "actor": "policy", "granted_by": ADA})
    fleet.ledger.append({"action": "redirect", "run": "r2", "instruction": "again"})  # r2 is accepted since
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 5)
        await move_to(app, pilot, seq)
        await pilot.press("z")
        await wait_for(pilot, lambda: said in notices(app), f"the notice {said!r}; seen: {notices(app)!r}")
        assert isinstance(app.screen, HistoryScreen)
    assert fleet.get("r2").reverted is None


async def test_an_already_reverted_accept_says_so(fleet: Fleet) -> None:
    fleet.revert("r2", "flaky")
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 4)
        await move_to(app, pilot, "0")
        await pilot.press("z")
        await wait_for(pilot, lambda: "was already reverted by Test Conductor" in notices(app), "the refusal")
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetail), "the accept's evidence")
        assert field(str(app.screen.query_one("#detail").render()), "reverted") == "by entry #3"


HOSTILE = {"action": "[b]accept", "run": "[/]", "spec": "[bold red]x", "agent": "[link=https://evil]a[/link]",
           "actor": "[/]\x1b[31mred\u202e", "reason": "one\ntwo", "gates": [{"name": "[/]", "status": "[red]"}],
           "$variable": "[$error]", "files": ["[/]"]}


async def test_hostile_values_show_as_written_and_break_nothing(fleet: Fleet) -> None:
    fleet.ledger.append(HOSTILE)
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 4)
        hostile = rows(app)[0]
        assert (hostile["action"], hostile["run"], hostile["spec"]) == ("[b]accept", "[/]", "[bold red]x")
        assert hostile["actor"] == "[/]�[31mred�" and hostile["agent"] == "[link=https://evil]a[/link]"
        table = app.screen.query_one("#entries", DataTable)
        assert "[bold red]x" in table.render_line(1).text  # drawn as written, no style taken from it
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetail), "its evidence")
        detail = str(app.screen.query_one("#detail").render())
        assert "$variable" in detail and "[$error]" in detail and "1 changed: [/]" in detail
        assert field(detail, "reason") == "one" and "two" in detail
        await pilot.pause()
        assert "[/]" in app.screen.query_one("#detail").render_line(1).text


@pytest.mark.parametrize("entry", [
    {},
    {"action": None, "seq": "x", "hash": 5, "time": 12, "gates": "all green", "files": 3, "approvals": "Ada"},
    {"action": "approve", "run": 7, "actor": ["Ada"], "time": "yesterday", "gates": [None, 3, {"status": 1}],
     "findings": [{"priority": 1, "title": None}, "loose"], "approvals": [{"actor": ADA, "time": "2026-01-01T10:00:00Z",
                                                                          "candidate": "c" * 40}, 5]},
    {"action": "trust", "commands": ["make setup"], "actor": ADA, "sig": "s", "signer": {"principal": "ada"}},
    {"action": "revoke", "demoted": "yes", "level": {"deep": [1, 2]}, "reason": 5, "unready": "x", "forced": True},
])
async def test_entries_with_fields_missing_or_odd_show_without_crashing(fleet: Fleet, entry: dict) -> None:
    write_line(fleet, entry)
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_history(app, pilot, 4)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetail), "its evidence")
        detail = str(app.screen.query_one("#detail").render())
        assert str(app.screen.query_one("#title").render()).startswith("#") and field(detail, "signature")
        await pilot.press("z")  # never an accept: said why, nothing else
        await wait_for(pilot, lambda: "be reverted" in notices(app), "the refusal")
        assert isinstance(app.screen, HistoryScreen)


async def test_a_signed_entry_names_its_signer(fleet: Fleet) -> None:
    write_line(fleet, {"seq": 3, "action": "accept", "sig": "x", "signer": {"principal": "[/b]", "key": "SHA256:k"}})
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_history(app, pilot, 4)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetail), "its evidence")
        detail = str(app.screen.query_one("#detail").render())
        assert field(detail, "signature").startswith("signed by [/b] (key SHA256:k)")


async def test_an_unreadable_line_is_counted_and_the_rest_shown(fleet: Fleet) -> None:
    with fleet.ledger.path.open("ab") as ledger:
        ledger.write(b"not json\n")
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_history(app, pilot, 3)
        assert "1 unreadable lines left out" in str(app.screen.query_one("#title").render())


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_the_columns_fit_the_terminal_without_scrolling_sideways(fleet: Fleet, size: tuple[int, int]) -> None:
    fleet.ledger.append({"action": "accept", "run": "r9", "spec": "a-rather-long-spec-name-for-docs",
                         "agent": "claude-code-reviewer", "actor": "policy", "granted_by": ADA,
                         "gates": [{"name": "pytest", "status": "failed", "stale": True}]})
    app = make_app(fleet)
    async with app.run_test(size=size) as pilot:
        await open_history(app, pilot, 4)
        table = app.screen.query_one("#entries", DataTable)
        await wait_for(pilot, lambda: table.virtual_size.width <= table.size.width,
                       f"the table to fit: {table.virtual_size.width} > {table.size.width}")
        assert rows(app)[0]["actor"] == "policy (granted by Ada Lovelace)"  # whole, or cut with … when drawn
        assert table.size.width >= size[0] - 6


async def test_an_approval_shows_how_many_counted_of_how_many_needed(fleet: Fleet) -> None:
    accept = fleet.ledger.entries()[0]
    fleet.ledger.append({**{key: accept[key] for key in ("run", "agent", "spec", "gates", "diff_sha256")},
                         "action": "approve", "actor": ADA, "approvals": [ADA], "needed": 2, "counted": [ADA]})
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_history(app, pilot, 4)
        assert (rows(app)[0]["action"], rows(app)[0]["evidence"]) == ("approve", "3/3 ✓ approval 1/2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetail), "its evidence")
        detail = str(app.screen.query_one("#detail").render())
        assert "Approvals  1 of 2 counted" in detail and f"• {ADA}" in detail
