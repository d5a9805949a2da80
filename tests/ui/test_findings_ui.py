"""Pilot tests: findings in the diff and the Findings tab, comments, selections sent with a redirect, the
evidence line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.core.base.findings import Finding
from orchestra.core.fleet import Fleet
from orchestra.core.policy import EvidenceItem
from orchestra.ui.app import OrchestraApp
from orchestra.ui.dialogs import TextPrompt
from orchestra.ui.diff_view import DiffView
from orchestra.ui.findings_list import FindingsList
from orchestra.ui.format import evidence_text
from orchestra.ui.review_screen import ReviewScreen
from tests.ui.fleet_fixture import CLOCK, build_fleet, gate, git, write_run

LONG = [f"def helper_{n}(values):\n    return values[{n}]\n" for n in range(20)]  # 40 lines
CRITIC = {"name": "critic", "kind": "llm", "model": "openai/gpt-test", "vendor": "openai"}


def findings_of_r5() -> list[Finding]:
    """What the reviewer and ruff say about r5's change (new-side lines of calc/long.py and calc/util.py)."""
    review = "review:critic"
    return [
        Finding("Mean of an empty list divides by zero", "P1", review, path="calc/long.py", line_start=4,
                line_end=4, body="mean([]) raises ZeroDivisionError; the spec says it returns 0.0.",
                suggestion="    return sum(values) / len(values) if values else 0.0", confidence=0.9),
        Finding("Median sorts the caller's list in place", "P0", review, path="calc/long.py", line_start=30,
                line_end=31, body="sorted() copies; list.sort() does not."),
        Finding("No test for the empty list", "P2", review, path="tests/test_stats.py", line_start=3),
        Finding("The change has no changelog entry", "P2", review),
        Finding("helper_9 is now dead code", "P3", review, path="calc/long.py", line_start=19),
        Finding("Missing docstring in public function", "P3", "sarif:ruff", path="calc/util.py", line_start=1,
                rule="D103"),
    ]


def build_review_fleet(tmp_path: Path) -> Fleet:
    """The fixture's fleet plus r5, in review: a change to a 40-line file and a new file, with a reviewer's
    findings (on changed lines, on lines outside the diff, on another file, on the whole change) and ruff's."""
    fleet = build_fleet(tmp_path)
    root = fleet.repo.root
    git(root, "checkout", "-q", "-b", "orchestra/base5", "main")
    (root / "calc" / "long.py").write_text("".join(LONG))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "long file")
    base = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "-b", "orchestra/fix-mean/r5-fixer")
    lines = "".join(LONG).splitlines(keepends=True)
    lines[3] = "    return sum(values) / len(values)\n"
    lines[29:31] = ["def median(values):\n", "    values.sort()\n"]
    (root / "calc" / "long.py").write_text("".join(lines))
    (root / "calc" / "util.py").write_text("def shout(text):\n    return text.upper()\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "work on r5")
    candidate = git(root, "rev-parse", "HEAD")
    tree = git(root, "rev-parse", f"{candidate}^{{tree}}")
    git(root, "checkout", "-q", "main")
    found = findings_of_r5()
    review = gate("review-critic", "failed", tree, "review", summary="changes requested (1 P0, 1 P1)",
                  verdict="changes requested", findings=[f.to_json() for f in found if f.source == "review:critic"],
                  details={"agent": "critic", "model": "openai/gpt-test", "provider": "openai",
                           "author_provider": "openai", "same_provider": True, "prompt_tokens": 1200,
                           "completion_tokens": 300, "cost": 0.01, "explanation": "The fix is right; two bugs remain."})
    ruff = gate("ruff", "passed", tree, "sarif", summary="1 result", findings=[found[-1].to_json()])
    record = {"id": "r5", "agent": "fixer", "state": "review", "started": CLOCK - 60, "finished": CLOCK - 10,
              "candidate": candidate, "tree": tree, "files": (["calc/long.py", "calc/util.py"], 5, 3),
              "branch": "orchestra/fix-mean/r5-fixer", "output": ["done"],
              "gates": [gate("boundary", "passed", tree, "boundary", summary="within bounds"),
                        gate("secrets", "passed", tree, "secrets", summary="no secrets found"),
                        gate("pytest", "passed", tree, summary="12 passed", passed=12, failed=0), review, ruff]}
    write_run(fleet, record, base, fleet.score.spec("fix-mean"))
    fleet.store.update("r5", lambda run: setattr(run, "review_config", {"agents": [CRITIC], "block_on": "P1"}))
    return fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_review_fleet(tmp_path)


def make_app(fleet: Fleet) -> OrchestraApp:
    return OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)


async def settle(app: OrchestraApp, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


async def open_review(app: OrchestraApp, pilot, run_id: str = "r5") -> ReviewScreen:
    app.screen.query_one(f"#run-{run_id}").focus()
    await pilot.pause()
    await pilot.press("enter")
    await settle(app, pilot)
    assert isinstance(app.screen, ReviewScreen)
    return app.screen


def rows(view: DiffView) -> list[str]:
    """Every row of the view as plain text (rendered the way the terminal shows it)."""
    texts = []
    for top in range(0, view.virtual_size.height, view.size.height):
        view.scroll_to(y=top, animate=False)
        texts += [view.render_line(y).text for y in range(min(view.size.height, view.virtual_size.height - top))]
    view.scroll_to(y=0, animate=False)
    return texts


async def test_findings_appear_at_their_lines(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_review(app, pilot)
        view = screen.query_one(DiffView)
        assert view.finding_count == 6
        shown = rows(view)
        at = {title: next(i for i, text in enumerate(shown) if title in text)
              for title in ("Mean of an empty list", "Median sorts", "No test for the empty list",
                            "no changelog entry", "helper_9 is now dead code", "Missing docstring")}
        # On its line: right after the new line 4 (the last line of its range for the P0, line 31).
        assert "4 +     return sum(values) / len(values)" in shown[at["Mean of an empty list"] - 1]
        assert "P1 critic: Mean of an empty list divides by zero" in shown[at["Mean of an empty list"]]
        assert "31 +     values.sort()" in shown[at["Median sorts"] - 1]
        assert "P0 critic" in shown[at["Median sorts"]]
        assert "1 + def shout(text):" in shown[at["Missing docstring"] - 1] and "P3 ruff" in shown[at["Missing docstring"]]
        # The whole change, and a file the diff does not show: before the first file.
        assert at["no changelog entry"] < 2 and "whole change" in shown[at["no changelog entry"]]
        assert at["No test for the empty list"] < 2 and "not in this diff" in shown[at["No test for the empty list"]]
        # A line of a changed file outside the diff: right under that file's header.
        assert "calc/long.py" in shown[at["helper_9 is now dead code"] - 1]
        assert "line 19 (not shown in the diff)" in shown[at["helper_9 is now dead code"]]


async def test_next_and_previous_finding_keys_move_the_cursor(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_review(app, pilot)
        view = screen.query_one(DiffView)
        assert view.finding_at_cursor().title == "The change has no changelog entry"  # the first row
        seen = []
        for _ in range(5):
            await pilot.press("}")
            seen.append(view.finding_at_cursor().title)
        assert seen == ["No test for the empty list", "helper_9 is now dead code",
                        "Mean of an empty list divides by zero", "Median sorts the caller's list in place",
                        "Missing docstring in public function"]
        await pilot.press("}")  # nothing below: the cursor stays
        assert view.finding_at_cursor().title == "Missing docstring in public function"
        await pilot.press("{")
        assert view.finding_at_cursor().title == "Median sorts the caller's list in place"
        line = view.cursor
        assert "sorted() copies" in view.render_line(line + 1 - view.scroll_offset.y).text  # its body, opened


async def test_findings_tab_lists_p0_first_and_enter_jumps_to_the_line(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_review(app, pilot)
        await pilot.press("5")
        await pilot.pause()
        listing = screen.query_one(FindingsList)
        assert app.focused is listing
        assert [f.priority for f in listing.findings] == ["P0", "P1", "P2", "P2", "P3", "P3"]
        first = listing.get_option_at_index(0).prompt
        assert "P0" in str(first) and "calc/long.py:30-31" in str(first) and "— critic" in str(first)
        await pilot.press("down", "enter")
        await pilot.pause()
        view = screen.query_one(DiffView)
        assert app.focused is view
        assert view.finding_at_cursor().title == "Mean of an empty list divides by zero"
        assert (view.line_at_cursor().path, view.line_at_cursor().new_no) == ("calc/long.py", 4)


async def test_c_adds_a_comment_through_the_fleet_and_u_removes_it(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_review(app, pilot)
        view = screen.query_one(DiffView)
        assert view.jump_to_finding(findings_of_r5()[0].id)
        await pilot.press("k")  # from the note up to its line: new line 4
        assert view.line_at_cursor().new_no == 4
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt) and "calc/long.py:4" in app.screen.title_text
        await pilot.press(*"guard the empty list", "enter")
        await settle(app, pilot)
        comments = fleet.store.load("r5").comments
        assert [(c["path"], c["line_start"], c["body"], c["source"]) for c in comments] == [
            ("calc/long.py", 4, "guard the empty list", "comment")]
        assert view.finding_count == 7
        assert view.jump_to_finding(comments[0]["id"])
        assert "✎  you: guard the empty list" in view.render_line(view.cursor - view.scroll_offset.y).text
        await pilot.press("u")
        await settle(app, pilot)
        assert fleet.store.load("r5").comments == []
        assert view.finding_count == 6


async def test_a_comment_typed_in_one_burst_is_kept_whole(fleet: Fleet) -> None:
    """Keys that arrive together with enter (typeahead over SSH) all reach the comment before it is sent."""
    from textual import events
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_review(app, pilot)
        screen.query_one(DiffView).jump_to_finding(findings_of_r5()[0].id)
        await pilot.press("k", "c")
        assert isinstance(app.screen, TextPrompt)
        for key, character in [*((c, c) for c in "why"), ("enter", "\r")]:
            app.post_message(events.Key(key, character))
        await settle(app, pilot)
    assert [c["body"] for c in fleet.store.load("r5").comments] == ["why"]


async def test_two_selected_findings_go_with_the_redirect(fleet: Fleet, monkeypatch) -> None:
    # The agent's supervisor is not what is tested here: the redirect is recorded before it would start.
    monkeypatch.setattr(fleet, "start", lambda run_id, mode="run": fleet.store.load(run_id))
    found = findings_of_r5()
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_review(app, pilot)
        view = screen.query_one(DiffView)
        view.jump_to_finding(found[0].id)
        await pilot.press("x")
        view.jump_to_finding(found[1].id)
        await pilot.press("x")
        await pilot.pause()
        assert "✓" in view.render_line(view.cursor - view.scroll_offset.y).text[:10]
        assert "(6 · ✓ 2 selected)" in str(screen.query_one("TabbedContent").get_tab("findings").label)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt) and "2 findings will be sent" in app.screen.detail
        await pilot.press(*"fix these", "enter")
        await settle(app, pilot)
        assert screen.selected == {}
    run = fleet.store.load("r5")
    assert run.feedback[-1]["message"] == "fix these"
    assert sorted(f["id"] for f in run.feedback[-1]["findings"]) == sorted([found[0].id, found[1].id])
    entry = fleet.ledger.last()
    assert entry["action"] == "redirect" and sorted(f["id"] for f in entry["findings"]) == sorted(
        [found[0].id, found[1].id])


async def test_a_selection_may_be_sent_without_an_instruction(fleet: Fleet, monkeypatch) -> None:
    monkeypatch.setattr(fleet, "start", lambda run_id, mode="run": fleet.store.load(run_id))
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_review(app, pilot)
        await pilot.press("X", "d")
        await pilot.pause()
        assert "6 findings will be sent" in app.screen.detail
        await pilot.press("enter")
        await settle(app, pilot)
    assert len(fleet.store.load("r5").feedback[-1]["findings"]) == 6


def plain(line) -> str:
    """The text of a line: Content, or markup."""
    from textual.content import Content
    return line.plain if isinstance(line, Content) else Content.from_markup(line).plain


async def test_the_evidence_line_on_a_pane_shows_each_part(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        r5 = plain(app.screen.query_one("#run-r5").evidence_line(120))
        assert r5 == ("tests ✓ 12 · bounds ✓ · scans ✓ · review ✗ changes same provider · "
                      "P0:1 P1:1 P2:2 P3:2")
        r2 = plain(app.screen.query_one("#run-r2").evidence_line(120))
        assert r2 == "✔ ready · tests ✓ 4 · bounds ✓ · scans ✓"
        r3 = plain(app.screen.query_one("#run-r3").evidence_line(120))
        assert r3 == "tests 1 failed stale · bounds ✗ · scans …"
        narrow = plain(app.screen.query_one("#run-r5").evidence_line(36))
        assert len(narrow) <= 36 and "P0:1" in narrow


def test_evidence_states_are_coloured_and_stale_says_so() -> None:
    items = [EvidenceItem("tests", "ok", "12 passed"), EvidenceItem("coverage", "bad", "71% < 80%"),
             EvidenceItem("boundary", "stale", "stale"), EvidenceItem("scans", "pending", "running"),
             EvidenceItem("review", "ok", "approved"), EvidenceItem("findings", "ok", "P2:1", counts=(("P2", 1),))]
    line = evidence_text(items)
    assert line.plain == "tests ✓ 12 · cov ✗ 71% < 80% · bounds stale · scans … · review ✓ approved · P2:1"

    def style_of(text: str) -> list[str]:
        start = line.plain.index(text)
        return [span.style for span in line.spans if (span.start, span.end) == (start, start + len(text))]
    assert style_of("✓ 12") == ["$text-success"] and style_of("✗ 71% < 80%") == ["$text-error"]
    assert style_of("bounds") == ["$text-muted strike"] and style_of("stale") == ["$text-warning"]
    short = plain(evidence_text(items, width=40))
    assert len(short) <= 40 and "stale" in short


async def test_a_ready_run_is_accepted_by_a_on_its_pane_at_once(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app.screen.query_one("#run-r2").focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert "✔ ready: a accepts" in str(app.screen.query_one("#evidence").render())
        await pilot.press("a")  # no dialog: the run is ready
        await settle(app, pilot)
    assert fleet.store.load("r2").state == "accepted" and not fleet.ledger.last().get("forced")


async def test_feedback_status_shows_resolved_and_remaining(fleet: Fleet) -> None:
    found = findings_of_r5()
    gone = Finding("Off-by-one in mean", "P1", "review:critic", path="calc/long.py", line_start=4)

    def redirected(run) -> None:
        run.feedback.append({"message": "fix", "findings": [gone.to_json(), found[1].to_json()], "comments": [],
                             "actor": "me", "time": CLOCK, "tree": "0" * 40})
    fleet.store.update("r5", redirected)
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_review(app, pilot)
        await pilot.press("5")
        await pilot.pause()
        text = plain(str(screen.query_one("#feedback").render()))
        assert "Your last redirect sent 2 findings:" in text and "✓ 1 resolved" in text and "✗ 1 still open" in text
        assert "resolved" in text.split("Off-by-one in mean")[0].splitlines()[-1]
        assert "still open" in text.split("Median sorts")[0].splitlines()[-1]
        p0 = str(screen.query_one(FindingsList).get_option_at_index(0).prompt)
        assert "Median sorts" in p0 and "still open after your redirect" in p0


async def test_gates_tab_shows_the_reviewer_and_stamps_same_provider(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_review(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        text = plain(str(screen.query_one("#gate-detail").render()))
    assert "verdict changes requested" in text
    assert "reviewer critic · model openai/gpt-test · provider openai" in text
    assert "SAME PROVIDER" in text and "The fix is right; two bugs remain." in text
    assert "ruff" in text and "1 result" in text


async def test_help_lists_the_review_keys(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_review(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        rows_by_id = {row[0]: row[1] for row in app.screen.rows}
    assert rows_by_id["diff.next_finding"] == "}" and rows_by_id["diff.prev_finding"] == "{"
    assert (rows_by_id["review.comment"], rows_by_id["review.uncomment"]) == ("c", "u")
    assert (rows_by_id["review.select"], rows_by_id["review.select_all"]) == ("x", "X")
    assert rows_by_id["review.findings"] == "5"


def test_review_screen_with_findings_snapshot(fleet: Fleet, snap_compare) -> None:
    async def open_it(pilot) -> None:
        await pilot.pause()
        pilot.app.screen.query_one("#run-r5").focus()
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("}", "}", "}", "}")
        await pilot.pause()
    assert snap_compare(make_app(fleet), terminal_size=(80, 24), run_before=open_it)
