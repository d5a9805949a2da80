"""ActivityWatch: working, waiting for an answer, or unknown, judged from output and an injected clock."""

from __future__ import annotations

import pytest

from orchestra.core.supervise.activity import Activity, ActivityWatch, format_duration, looks_like_prompt

PROMPTS = [
    "Apply these changes? (y/n)",
    "Do you want to continue? [Y/n] ",
    "Overwrite calc/stats.py? [y/N]:",
    "Proceed (yes/no)",
    "Delete 3 files [y/n/a]?",
    "Add calc/stats.py to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: ",
    "Run this command? y/n",
    "Continue?",
    "continue?",
    "Which file should I change?",
    "Press Enter to continue…",
    "Press Enter…",
    "[Press any key]",
    "Password:",
    "Password for 'https://user@github.com': ",
    "Enter passphrase for key '/home/u/.ssh/id_ed25519': ",
    "Username for 'https://github.com':",
    "Enter your API key:",
    "Select an option [1-3]:",
    "Choose a model:",
    ">",
    "> ",
    ">>>",
    "❯",
    "\x1b[1mApply these changes?\x1b[0m (y/n)",
]

NOT_PROMPTS = [
    "",
    "   ",
    "Is mean() wrong? Yes: it divides by len(values) - 1.",
    "Reading tests/test_stats.py ...",
    "Done: a one-line fix inside calc/",
    "Running tests [3/10]",
    "Type annotations:",
    "Selected 3 files:",
    "## Why does test_mean fail?",
    "- Should the docs change too?",
    "1. What does mean() return?",
    "# TODO: is this right?",
    "// why?",
    "> quoted question?",
    "https://example.com/search?",
    "Exit code: 0",
    "the (y/n) flag was removed from the installer",
    "Tokens used: 1200",
    "Press the button to win",
]


@pytest.mark.parametrize("text", PROMPTS)
def test_looks_like_a_prompt(text: str) -> None:
    assert looks_like_prompt(text)


@pytest.mark.parametrize("text", NOT_PROMPTS)
def test_does_not_look_like_a_prompt(text: str) -> None:
    assert not looks_like_prompt(text)


# Each step: ("line", text, t), ("partial", text, t); then the expected assessment at a time.
SCENARIOS = {
    "a question followed by silence waits": (
        [("line", "Planning the fix ...", 0.0), ("line", "Apply these changes? (y/n)", 1.0)],
        5.0, Activity("waiting", "asks: Apply these changes? (y/n)")),
    "a question is not yet waiting before the quiet period": (
        [("line", "Apply these changes? (y/n)", 1.0)],
        3.5, Activity("working", "output 2s ago")),
    "a question answered by more output is working": (
        [("line", "Apply these changes? (y/n)", 1.0), ("line", "Applied.", 2.0)],
        4.0, Activity("working", "output 2s ago")),
    "a prompt printed without a newline waits": (
        [("line", "Reading calc/stats.py", 0.0), ("partial", "Overwrite calc/stats.py? [y/N] ", 0.5)],
        4.0, Activity("waiting", "asks: Overwrite calc/stats.py? [y/N]")),
    "a cleared partial falls back to the last line": (
        [("line", "Thinking ...", 0.0), ("partial", "Continue? [Y/n]", 1.0), ("partial", "", 1.5)],
        10.0, Activity("working", "output 9s ago")),
    "blank lines after a question do not hide it": (
        [("line", "Which file should I change?", 0.0), ("line", "", 0.1), ("line", "   ", 0.2)],
        3.3, Activity("waiting", "asks: Which file should I change?")),
    "a partial prompt wins over a plain last line": (
        [("line", "Plan: fix mean()", 0.0), ("partial", "Password: ", 0.1)],
        60.0, Activity("waiting", "asks: Password:")),
    "long silence without a prompt is stalled, with the last words": (
        [("line", "Running the test suite ...", 0.0)],
        130.0, Activity("stalled", "no output for 2m 10s; last: Running the test suite ...")),
    "silence just under the stall limit is still working": (
        [("line", "Running the test suite ...", 0.0)],
        89.5, Activity("working", "output 1m 29s ago")),
    "a prompt is waiting, not stalled, however long the silence": (
        [("line", "Continue?", 0.0)],
        500.0, Activity("waiting", "asks: Continue?")),
    "a question mark in the middle of a line is not a prompt": (
        [("line", "Is mean() wrong? Yes, off by one.", 0.0)],
        10.0, Activity("working", "output 10s ago")),
    "fresh output is working": (
        [("line", "Editing calc/stats.py", 9.6)],
        10.0, Activity("working", "output just now")),
    "a spinner redrawing its partial line counts as output": (
        [("line", "Waiting for the model", 0.0), ("partial", "⠋ thinking", 50.0), ("partial", "⠙ thinking", 95.0)],
        100.0, Activity("working", "output 5s ago")),
    "the same partial sent again is not new output": (
        [("line", "Waiting for the model", 0.0), ("partial", "⠋ thinking", 5.0), ("partial", "⠋ thinking", 95.0)],
        100.0, Activity("stalled", "no output for 1m 35s; last: ⠋ thinking")),
    "escape codes in a partial prompt are ignored": (
        [("partial", "\x1b[33mProceed?\x1b[0m (yes/no) ", 0.0)],
        3.0, Activity("waiting", "asks: Proceed? (yes/no)")),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_assessment(name: str) -> None:
    steps, now, expected = SCENARIOS[name]
    watch = ActivityWatch(waiting_after=3.0, unknown_after=90.0)
    for kind, text, at in steps:
        getattr(watch, kind)(text, at)
    assert watch.assess(now) == expected


def test_before_any_output_silence_counts_from_the_first_assessment() -> None:
    watch = ActivityWatch(waiting_after=3.0, unknown_after=90.0)
    assert watch.assess(1000.0) == Activity("working", "output just now")
    assert watch.assess(1089.0).state == "working"
    assert watch.assess(1095.0) == Activity("stalled", "no output for 1m 35s")
    watch.line("Hello", 1096.0)
    assert watch.assess(1097.0) == Activity("working", "output 1s ago")


def test_the_thresholds_are_configurable() -> None:
    watch = ActivityWatch(waiting_after=10.0, unknown_after=20.0)
    watch.line("Continue?", 0.0)
    assert watch.assess(9.0).state == "working" and watch.assess(10.0).state == "waiting"
    watch.line("still going", 11.0)
    assert watch.assess(30.0).state == "working" and watch.assess(31.0).state == "stalled"


def test_a_long_prompt_is_shortened_in_the_reason() -> None:
    watch = ActivityWatch()
    question = "Should I " + "really " * 30 + "do it?"
    watch.line(question, 0.0)
    reason = watch.assess(5.0).reason
    assert reason.startswith("asks: Should I really") and reason.endswith("…") and len(reason) <= 86


def test_a_clock_that_goes_backwards_counts_as_no_silence() -> None:
    watch = ActivityWatch()
    watch.line("Continue?", 10.0)
    assert watch.assess(5.0) == Activity("working", "output just now")


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.9, "0s"), (45, "45s"), (60, "1m 0s"), (130, "2m 10s"), (3599, "59m 59s"),
    (3600, "1h 0m"), (3900.5, "1h 5m"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_line_its_preset_knows_as_a_stall_is_stalled_at_once() -> None:
    watch = ActivityWatch(waiting_after=3.0, unknown_after=90.0,
                          stall_lines=(r"waiting up to \d+ minutes? for you to finish in the browser",))
    watch.line("Please open this URL to sign in: https://openrouter.ai/auth", 0.0)
    watch.line("Waiting up to 5 minutes for you to finish in the browser...", 0.1)
    assert watch.assess(1.0).state == "working"  # just said
    assert watch.assess(3.2) == Activity("stalled", "Waiting up to 5 minutes for you to finish in the browser...")


def test_a_stall_line_followed_by_a_stack_trace_is_what_the_reason_shows() -> None:
    watch = ActivityWatch(waiting_after=3.0, unknown_after=90.0, stall_lines=(r"Attempt \d+ failed",))
    watch.line("Attempt 3 failed: fetch failed. Retrying with backoff...", 0.0)
    watch.line("    at async GeminiClient.processTurn (file:///gemini.js:1:2)", 0.1)
    assert watch.assess(4.0) == Activity("stalled", "Attempt 3 failed: fetch failed. Retrying with backoff...")
    watch.line("Editing calc/stats.py", 200.0)  # it recovered; much later it is quiet for another reason
    assert watch.assess(205.0).state == "working"
