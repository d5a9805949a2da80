"""The conductor's decisions on the focused run: keys, their availability, and the workers that carry them out."""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import SuspendNotSupported, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from orchestra.core.base.errors import OrchestraError
from orchestra.core.policy import readiness
from orchestra.core.runs.feed import RunUpdate
from orchestra.core.runs.lifecycle import allowed
from orchestra.core.runs.run import Run
from orchestra.core.runs.workflow import awaiting_approval, current, read_plan

if TYPE_CHECKING:  # the dialogs load when first opened: they are not needed for the first paint
    from orchestra.core.fleet.update import UpdateResult
    from orchestra.ui.dialogs import NewRunRequest

RUN_ACTIONS = frozenset({"accept", "reject", "redirect", "stop", "shell", "attach", "update", "publish", "revert",
                         "plan"})


def approval_question(run: Run, plan: str | None) -> tuple[str, str]:
    """The question before approving a workflow's stage: what starts next, and the plan's first lines."""
    from orchestra.core.runs.workflow import position
    stage = current(run) or {}
    number, count = position(run)
    following = (run.workflow or {}).get("stages", [])[number] if number < count else None
    after = (f"Stage {number + 1}/{count} ({following['name']}, by {following['agent']}) starts"
             + (" with this plan." if plan else ".") if following else "The review comes next.")
    lines = (plan or "").strip().splitlines()
    shown = "\n".join(lines[:12]) + (f"\n… ({len(lines) - 12} more lines: e edits it)" if len(lines) > 12 else "")
    what = "the plan" if plan else f"stage {stage.get('name')}"
    return f"Approve {what} of {run.id}?", (f"{shown}\n\n" if shown else "") + after + " The ledger records it."


class RunActions:
    """Mixed into the App: a/A accept, r/R reject, d redirect, s stop — on the focused run."""

    RUN_BINDINGS = [
        Binding("a", "accept", "Accept", id="run.accept",
                tooltip="Merge the focused run into the target branch (asks first unless every gate is green)"),
        Binding("A", "accept(True)", "Accept now", id="run.accept_now", show=False,
                tooltip="Accept without asking, even with failing or stale gates"),
        Binding("r", "reject", "Reject", id="run.reject", tooltip="Discard the run with a reason; its branch is kept"),
        Binding("R", "reject(True)", "Reject now", id="run.reject_now", show=False,
                tooltip="Reject without asking for a reason"),
        Binding("e", "plan", "Edit plan", id="run.plan", show=False,
                tooltip="Edit the plan a workflow waits to have approved ($VISUAL or $EDITOR); a approves it"),
        Binding("z", "revert", "Revert", id="run.revert", show=False,
                tooltip="Undo an accepted run's merge on its target with a revert commit (asks why; H shows "
                        "accepted runs)"),
        Binding("d", "redirect", "Redirect", id="run.redirect",
                tooltip="Send the agent an instruction; it works again on top of what it did"),
        Binding("s", "stop", "Stop", id="run.stop", tooltip="Stop the working agent; its work so far is kept"),
        Binding("o", "shell", "Shell", id="run.shell",
                tooltip="Open a shell in the run's worktree; leaving it (exit) returns to the fleet"),
        Binding("O", "shell(True)", "Agent CLI", id="run.shell_agent", show=False,
                tooltip="Open the run's agent CLI itself, interactively, in its worktree (a shell for other agents)"),
        Binding("t", "attach", "Talk", id="run.attach", show=False,
                tooltip="Talk to the run's live interactive agent in this terminal; ctrl-] comes back to the fleet "
                        "and the agent goes on (agents with session = \"interactive\")"),
        Binding("u", "update", "Update", id="run.update", show=False,
                tooltip="Bring the run up to date with its target (rebase or merge, as [orchestra] update says); "
                        "its gates run again. On the review screen u removes a comment: use U or the palette"),
        Binding("U", "update", "Update", id="run.update_review", show=False,
                tooltip="Bring the run up to date with its target: the key for it on the review screen too"),
        Binding("P", "publish", "Push", id="run.publish", show=False,
                tooltip="Push the run's branch to the remote and open a pull request (with gh) or show the compare "
                        "URL; recorded in the ledger"),
    ]

    def current_run(self, screen: Screen | None = None) -> Run | None:
        """The run the keys act on: the focused pane's, or the one under review, on screen (default: the
        screen shown; a dialog or the palette on top has none)."""
        screen = self.screen if screen is None else screen
        if isinstance(screen, ModalScreen):
            return None
        run_id = getattr(screen, "run", None)
        run_id = run_id.id if run_id is not None else None
        if run_id is None and hasattr(screen, "focused_run_id"):
            run_id = screen.focused_run_id()
        return self.runs.get(run_id) if run_id else None

    def target_run(self, run_id: str | None) -> Run | None:
        """The run an action acts on: the one named (as it is now), else the focused one."""
        return self.runs.get(run_id) if run_id is not None else self.current_run()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in RUN_ACTIONS:
            return True if allowed(action, self.current_run()) else None
        if action == "new_run" and isinstance(self.screen, ModalScreen):
            return None
        return True

    def unavailable_action_for(self, key: str) -> str | None:
        """The run action bound to key when it is unavailable right now (so pressing it can say why)."""
        for binding in self.RUN_BINDINGS:
            keys = (self.keymap.get(binding.id) or binding.key).split(",")
            action = binding.action.split("(")[0]
            if key in [k.strip() for k in keys] and not isinstance(self.screen, ModalScreen):
                return None if allowed(action, self.current_run()) else action
        return None

    # -- the actions ---------------------------------------------------------------------------
    def action_accept(self, force: bool = False, run_id: str | None = None) -> None:
        run = self.target_run(run_id)
        if not allowed("accept", run):
            return
        # The same question `orchestra accept` asks; here an unready run is asked about, and a confirmed
        # (or `A`) accept of it is recorded in the ledger as forced, with what was not ready.
        from orchestra.ui.dialogs import ConfirmDialog
        if awaiting_approval(run):  # a workflow's stage waits for approval: accept approves it, nothing merges
            if force:
                self.carry_out("accept", self.fleet.accept, run.id, run.candidate, None, False)
                return
            title, detail = approval_question(run, read_plan(self.fleet.store.run_dir(run.id)))
            self.push_screen(ConfirmDialog(title, detail, "Approve"),
                             lambda yes: yes and self.carry_out("accept", self.fleet.accept, run.id, run.candidate,
                                                                None, False))
            return
        ready = readiness(run)
        if force or ready.ready:
            self.carry_out("accept", self.fleet.accept, run.id, run.candidate, None, not ready.ready)
            return
        detail = ("\n".join(f"• {reason}" for reason in ready.reasons)
                  + f"\n\nMerge {run.branch} into {run.target} anyway? The ledger records it as forced.")
        self.push_screen(ConfirmDialog(f"Accept {run.id} ({run.agent})?", detail, "Accept"),
                         lambda yes: yes and self.carry_out("accept", self.fleet.accept, run.id, run.candidate,
                                                            None, True))

    def action_reject(self, force: bool = False, run_id: str | None = None) -> None:
        run = self.target_run(run_id)
        if not allowed("reject", run):
            return
        if force:
            self.carry_out("reject", self.fleet.reject, run.id, "")
            return
        from orchestra.ui.dialogs import TextPrompt
        retry = awaiting_approval(run) and (current(run) or {}).get("on_reject", "retry") == "retry"
        detail = (f"Why? The {(current(run) or {}).get('name')} stage does its work again with your reason."
                  if retry else "Why? (optional; recorded in the ledger). The worktree is removed, the branch is kept.")
        self.push_screen(TextPrompt(f"Reject {run.id} ({run.agent})", detail, "reason"),
                         lambda reason: reason is not None and self.carry_out("reject", self.fleet.reject, run.id, reason))

    def action_revert(self, run_id: str | None = None) -> None:
        run = self.target_run(run_id)
        if not allowed("revert", run):
            return
        from orchestra.ui.dialogs import TextPrompt
        detail = (f"Undo its merge {(run.merge_commit or '')[:10]} on {run.target} with a revert commit. Why? "
                  "(optional; recorded in the ledger and the commit)")
        self.push_screen(TextPrompt(f"Revert {run.id} ({run.agent})", detail, "reason"),
                         lambda reason: reason is not None and self.carry_out("revert", self.fleet.revert, run.id,
                                                                              reason))

    def action_redirect(self, run_id: str | None = None) -> None:
        """Ask for the instruction; the findings selected on the review screen and every unsent comment of
        yours go with it (then the instruction may be empty)."""
        run = self.target_run(run_id)
        if not allowed("redirect", run):
            return
        from orchestra.ui.dialogs import TextPrompt
        from orchestra.ui.findings import sent_summary
        findings = list(getattr(self.screen, "selected_findings", None) or [])
        sending = sent_summary(len(findings), len(run.comments))
        detail = ("The instruction for the agent. It works again on top of what it did so far."
                  + (f"\n\n{sending} will be sent with it (listed in its next prompt and kept in the ledger); "
                     "the instruction may be empty." if sending else ""))
        title = f"Redirect {run.id} ({run.agent})" + (f" with {sending}" if sending else "")
        use_case = functools.partial(self.fleet.redirect, findings=findings)
        self.push_screen(TextPrompt(title, detail, "instruction", required=not sending),
                         lambda text: text is not None and (text or sending)
                         and self.carry_out("redirect", use_case, run.id, text))

    def ask_comment(self, run: Run, path: str, line: int) -> None:
        """Ask for a comment on a line of the run's diff, and add it."""
        from orchestra.ui.dialogs import TextPrompt
        self.push_screen(TextPrompt(f"Comment on {path}:{line}", "Your note to the agent on this line. It goes "
                                    "with your next redirect (d); u on it removes it before then.", "comment",
                                    required=True),
                         lambda text: text and self.change_comments("comment", run.id, self.fleet.comment,
                                                                    run.id, path, line, text))

    @work(thread=True, group="comments")
    def change_comments(self, what: str, run_id: str, use_case: Callable, *args: object) -> None:
        """Add or remove a comment off the UI thread, then show the run as it is now on every screen."""
        done, _ = self.attempt(what, use_case, *args)
        if not done:
            return
        done, run = self.attempt(what, self.fleet.get, run_id)
        if done:
            self.call_from_thread(self.apply_updates, {run_id: RunUpdate(run, [])})
            self.call_from_thread(self.notify, "Comment added: it goes with your next redirect (d)."
                                  if what == "comment" else "Comment removed.", timeout=4)

    def action_stop(self, run_id: str | None = None) -> None:
        run = self.target_run(run_id)
        if allowed("stop", run):
            self.carry_out("stop", self.fleet.stop, run.id)

    def action_shell(self, agent: bool = False, run_id: str | None = None) -> None:
        """Suspend the UI and run an interactive program in the focused run's worktree."""
        run = self.target_run(run_id)
        if not allowed("shell", run):
            return
        worktree = Path(run.worktree)
        if not worktree.is_dir():
            self.notify(f"{run.id}'s worktree {worktree} is missing.", severity="error")
            return
        # Only when asked: not for the first paint.
        from orchestra.core.agents.presets import interactive_command, interactive_environment
        argv = interactive_command(run.agent_config) if agent else None
        # The CLI reaches the run's endpoint with its key, as its runs do (ANTHROPIC_BASE_URL, …).
        env = {**os.environ, **(interactive_environment(run.agent_config, os.environ) if argv else {})}
        argv = argv or [os.environ.get("SHELL") or "/bin/sh"]
        try:
            with self.suspend():
                print(f"orchestra: {' '.join(argv)} in {worktree} (run {run.id}); exit to return to the fleet")
                try:
                    subprocess.call(argv, cwd=worktree, env=env)
                except OSError as error:
                    print(f"orchestra: could not start {argv[0]}: {error.strerror or error}")
                    input("press enter to return to the fleet ")
        except SuspendNotSupported:
            self.notify(f"This terminal cannot hand over to a shell; run: cd {worktree}", severity="warning")

    def action_plan(self, run_id: str | None = None) -> None:
        """Suspend the UI and edit the plan a workflow waits to have approved, in $VISUAL or $EDITOR."""
        run = self.target_run(run_id)
        if not allowed("plan", run):
            return
        from orchestra.core.runs.workflow import plan_path
        path = plan_path(self.fleet.store.run_dir(run.id))
        argv = [*(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi").split(), str(path)]
        before = path.read_bytes() if path.is_file() else b""
        try:
            with self.suspend():
                try:
                    subprocess.call(argv)
                except OSError as error:
                    print(f"orchestra: could not start {argv[0]}: {error.strerror or error}")
                    input("press enter to return to the fleet ")
        except SuspendNotSupported:
            self.notify(f"This terminal cannot hand over to an editor; edit {path}", severity="warning")
            return
        edited = path.is_file() and path.read_bytes() != before
        self.notify(f"{run.id}'s plan " + ("was edited: a approves it as it is now" if edited else "is unchanged"),
                    markup=False)

    def action_attach(self, run_id: str | None = None) -> None:
        """Suspend the UI and relay the terminal to the run's interactive session until the detach key."""
        run = self.target_run(run_id)
        if not allowed("attach", run):
            return
        from orchestra.core.supervise.sessions import talk  # only when asked: not for the first paint
        try:
            with self.suspend():
                said = talk(run, self.fleet.store.run_dir(run.id))
        except SuspendNotSupported:
            self.notify(f"This terminal cannot hand over to {run.id}'s agent; run: orchestra attach {run.id}",
                        severity="warning")
            return
        self.notify(said.message, severity="information" if said.ok else "warning")

    def action_new_run(self) -> None:
        if self.fleet.score is None or not self.fleet.score.agents:
            self.notify("orchestra.toml declares no agents to run.", severity="warning")
            return
        from orchestra.ui.dialogs import NewRunDialog
        self.push_screen(NewRunDialog(self.fleet.score, self.host_names()), self.start_runs)

    def host_names(self) -> tuple[str, ...]:
        """The user's hosts for the new-runs dialog, when there are others than this machine (none when the
        settings cannot be read: the spawn says why)."""
        from orchestra.core.hosts import load_hosts
        from orchestra.core.settings import SettingsError
        try:
            hosts = load_hosts()
        except SettingsError:
            return ()
        return tuple(host.name for host in hosts) if len(hosts) > 1 else ()

    def start_runs(self, request: NewRunRequest | None) -> None:
        """Start the runs asked for; setup commands not yet allowed here are shown and asked about first."""
        if request is None:
            return
        from orchestra.core.fleet.trust import setup_to_allow
        commands = setup_to_allow(self.fleet.repo.root, self.fleet.score, request.spec)
        spawn = lambda trust: self.carry_out("spawn", self.fleet.spawn, request.spec,
                                             list(request.agents), request.task, trust, request.count, request.host)
        if not commands:
            spawn(False)
            return
        from orchestra.ui.dialogs import ConfirmDialog
        detail = ("This repository's score runs these commands in every new worktree, in the run's sandbox, "
                  "before its agent starts:\n\n" + "\n".join(f"  {command}" for command in commands)
                  + "\n\nAllow them? You are asked again if they change; the answer is kept outside the repository.")
        self.push_screen(ConfirmDialog("Allow this repository's setup commands?", detail, "Allow and start"),
                         lambda yes: yes and spawn(True))

    def carry_out(self, what: str, use_case: Callable, *args: object) -> None:
        """Run a fleet use-case off the UI thread and report how it went."""
        self._carry_out(what, self.screen, use_case, *args)

    @work(thread=True, group="decide")
    def _carry_out(self, what: str, origin: Screen, use_case: Callable, *args: object) -> None:
        done, result = self.attempt(what, use_case, *args)
        if done:
            self.call_from_thread(self.report_done, what, origin, result)

    def attempt(self, what: str, use_case: Callable, *args: object) -> tuple[bool, object]:
        """(True, its result) of a use-case called in a worker thread; a refusal or a failure is reported."""
        try:
            return True, use_case(*args)
        except OrchestraError as error:
            self.call_from_thread(self.notify, str(error), title=f"{what} refused", severity="error", timeout=12)
        except Exception as error:  # noqa: BLE001 -- a bug must not take the UI down with it
            self.call_from_thread(self.notify, f"{type(error).__name__}: {error}", title=f"{what} failed",
                                  severity="error", timeout=15)
        return False, None

    def report_done(self, what: str, origin: Screen, result: object) -> None:
        if what == "spawn":
            self.notify(f"Started {', '.join(run.id for run in result)}")
            return
        run: Run = result
        if what == "accept" and (run.decision or {}).get("action") == "advance":  # a workflow's stage approved
            from orchestra.core.runs.workflow import label
            self.notify(f"Approved {run.id}: {run.message}; now {label(run)}", markup=False)
            return
        if what == "accept" and run.state == "review":  # an approval rule wants more people: an approval
            from orchestra.core.fleet.approvals import approvals_line
            self.notify(f"Approved {run.id}: {approvals_line(run)}. It merges when the approval rules are met.",
                        markup=False)
            return
        messages = {"accept": f"Accepted {run.id}: merged into {run.target}", "reject": f"Rejected {run.id}",
                    "redirect": f"Redirected {run.id}", "stop": f"Stopped {run.id}",
                    "revert": f"Reverted {run.id} on {run.target}"}
        record = run.reverted if what == "revert" else run.decision
        unsigned = what != "stop" and not (record or {}).get("signed")
        self.notify(messages[what] + (f" — {run.message}" if "kept" in run.message else "")
                    + (" (ledger entry not signed)" if unsigned else ""))
        if what == "redirect" and callable(getattr(origin, "selection_sent", None)):
            origin.selection_sent()
        # Decided from its review screen: back to the fleet, unless the conductor has moved on already
        # (a review opened since, even of the same run, stays open).
        if what in ("accept", "reject") and self.screen is origin and type(origin).__name__ == "ReviewScreen":
            self.pop_screen()

    def run_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action, for the command palette; run actions act on the run of screen, the one the palette
        was opened on (the palette's own screen has none)."""
        run = self.current_run(screen)
        name = f"{run.id} ({run.agent})" if run else "the focused run"
        yield SystemCommand("New runs", "Start runs of a spec or a free-text task", self.action_new_run)
        for action, title, help_text in (
                ("accept", "Accept", f"Merge {name} into its target branch"),
                ("reject", "Reject", f"Discard {name} with a reason"),
                ("redirect", "Redirect", f"Send {name}'s agent an instruction"),
                ("stop", "Stop", f"Stop {name}'s agent"),
                ("shell", "Shell in", f"Open a shell in {name}'s worktree"),
                ("attach", "Talk to", f"Talk to {name}'s live interactive agent (ctrl-] comes back)"),
                ("update", "Update", f"Bring {name} up to date with its target branch"),
                ("publish", "Push", f"Push {name}'s branch and open a pull request"),
                ("revert", "Revert", f"Undo {name}'s merge on its target with a revert commit")):
            if allowed(action, run):
                yield SystemCommand(f"{title} {name}", help_text,
                                    functools.partial(getattr(self, f"action_{action}"), run_id=run.id))
        if run is not None and screen.__class__.__name__ != "ReviewScreen":
            yield SystemCommand(f"Review {name}", "Open its diff, gates and output", lambda: self.open_review(run.id))
        yield SystemCommand("Stats", "Outcomes per agent and per spec, from the ledger: accept rate, rework, "
                            "escaped defects, the conductor's time, cost", self.action_stats)
        yield SystemCommand("History", "Every decision in the ledger, newest first, filterable: its evidence, "
                            "and a revert of an accepted run", self.action_history)
        yield SystemCommand("Autonomy", "Per spec and agent: the level, who granted it, the track record and "
                            "suggested promotions; grant or revoke (recorded under your name)", self.action_autonomy)
        if run is not None:
            yield SystemCommand("Compare", f"{name}'s group side by side, ranked on evidence; choose one",
                                functools.partial(self.action_compare, run_id=run.id))
        if run is not None and (run.part_of or run.integration is not None):
            yield SystemCommand("Integrate", f"Merge the parts of {run.spec} ({run.group}) onto the target as one "
                                "candidate, verified by the spec's checks (again: build it anew)",
                                functools.partial(self.action_integrate, run_id=run.id))
        yield SystemCommand("Keys", "List every key and its id", self.action_help)

    # -- the target moves on, publishing ------------------------------------------------------------
    def on_ready(self) -> None:
        """Count how far each run is behind its target, and again whenever the target moves. (Textual calls
        this besides the App's own on_ready: it calls the handler of each class of the app's MRO.)"""
        if getattr(self, "live", True):
            self.follow_target()

    @work(exclusive=True, group="follow-target")
    async def follow_target(self) -> None:
        """Count again whenever the target branch's ref file is rewritten (an accept, a commit, a pull); the
        counts are kept on the runs, so the feed brings them to the panes."""
        from watchfiles import awatch
        from orchestra.core.fleet.update import refresh_behind
        from orchestra.core.git.update import target_ref_file
        target = await asyncio.to_thread(self.target_name)
        fleet_screen, title = self.fleet_screen(), self.fleet_title(target)
        if fleet_screen is not None and fleet_screen.title_text != title:
            fleet_screen.title_text = title
            fleet_screen.update_topbar()
        await asyncio.to_thread(self.attempt, "count", refresh_behind, self.fleet)
        ref = target_ref_file(self.fleet.repo, target)
        if target == "?" or not ref.parent.is_dir():
            return
        async for _changes in awatch(ref.parent, watch_filter=lambda _change, path: Path(path).name == ref.name,
                                     recursive=False, debounce=200, stop_event=getattr(self, "_stop_watching", None)):
            await asyncio.to_thread(self.attempt, "count", refresh_behind, self.fleet)

    def action_update(self, run_id: str | None = None) -> None:
        run = self.target_run(run_id)
        if allowed("update", run):
            self.notify(f"Updating {run.id} onto {run.target}…", timeout=3)
            self.bring_up_to_date(run.id)

    @work(thread=True, group="decide")
    def bring_up_to_date(self, run_id: str) -> None:
        from orchestra.core.fleet.update import update_run
        done, result = self.attempt("update", update_run, self.fleet, run_id, None, "leave")
        if done:
            self.call_from_thread(self.updated, result)

    def updated(self, result: UpdateResult) -> None:
        """Say what the update did; on a conflict, ask whether the agent resolves it (or you, in a shell)."""
        if not result.conflicted:
            self.notify(result.line(), timeout=8)
            return
        from orchestra.core.fleet.update import conflict_instruction
        from orchestra.ui.dialogs import ConfirmDialog
        run = result.run
        detail = (f"{result.line()}\n\nRedirect {run.agent} to resolve it? Or press n and resolve it yourself: "
                  f"o opens a shell in its worktree (run `git {result.mode} {run.target}` there).")
        self.push_screen(ConfirmDialog(f"Updating {run.id} conflicted", detail, "Redirect the agent"),
                         lambda yes: yes and self.carry_out("redirect", self.fleet.redirect, run.id,
                                                            conflict_instruction(result)))

    def action_publish(self, run_id: str | None = None) -> None:
        run = self.target_run(run_id)
        if allowed("publish", run):
            self.notify(f"Pushing {run.branch}…", timeout=3)
            self.push_run(run.id)

    @work(thread=True, group="publish")
    def push_run(self, run_id: str) -> None:
        from orchestra.core.fleet.publish import publish_run
        done, published = self.attempt("push", publish_run, self.fleet, run_id)
        if done:
            self.call_from_thread(self.notify, "\n".join(published.lines()), title=f"Published {run_id}", timeout=30)
