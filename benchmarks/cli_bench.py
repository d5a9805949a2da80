"""Benchmark: each coding-agent CLI through its preset, against its vendor's fake server.

Run after `./dev test` has installed the pinned CLIs (it exports ORCHESTRA_<CLI>_BIN; or set them):

    .venv/bin/python benchmarks/cli_bench.py [--turns N] [--only claude,codex,gemini,opencode]

For each CLI, in a temporary HOME and repository, the fake server answers every model request with a
short text (no tool call: the turn is the CLI starting, one model request, the CLI ending). It measures,
medians of N turns:

* direct: the preset's own command line (cli_invocation) run by hand in a checkout, without orchestra:
  the CLI's own start-up and its one request;
* spawn -> first line: from `Fleet.spawn` until the run's event log holds the CLI's first output line
  (what the pane shows first);
* spawn -> review: until the run is in review (the supervisor, the sandbox, the CLI, the commit);
* orchestra's overhead per turn: spawn -> review minus direct, i.e. excluding the CLI's own start-up
  and its talk with the server.

It prints a table and exits 0 (it does not fail on a missed target; the issue names no target).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from benchkit import git, isolate  # noqa: E402

KEY = "sk-bench-cli-0123456789"
REPLY = "Nothing to change: the code is right as it is."


def servers():
    """CLI -> (fake server class, its text reply builder, the agent's model, extra agent keys)."""
    from tests.harness import fake_anthropic, fake_gemini, fake_openai, fake_responses
    return {
        "claude": (fake_anthropic.FakeAnthropic, fake_anthropic.text, "claude-sonnet-4-5", {}),
        "codex": (fake_responses.FakeResponses, fake_responses.text, "fake-model", {}),
        "gemini": (fake_gemini.FakeGemini, fake_gemini.text, "gemini-2.5-flash", {}),
        "opencode": (fake_openai.FakeOpenAI, fake_openai.text, "openai/fake-model", {}),
    }


def repository(path: Path, cli: str, url: str, model: str) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "notes.txt").write_text("hello\n")
    (path / "orchestra.toml").write_text(
        f'[[agents]]\nname = "{cli}"\nkind = "cli"\npreset = "{cli}"\nmodel = "{model}"\napi_base = "{url}"\n'
        'api_key_env = "BENCH_KEY"\ntimeout = 300\n\n'
        '[[specs]]\nid = "look"\nintent = "Look at notes.txt and say whether anything needs changing"\n')
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def prepare_home(cli: str) -> None:
    """What a user of this CLI has at home: Gemini CLI needs the API-key sign-in chosen (see doctor)."""
    if cli == "gemini":
        settings = Path(os.environ["HOME"]) / ".gemini" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}},
                                        "privacy": {"usageStatisticsEnabled": False}}))


def direct(repo: Path, agent: dict, turns: int) -> list[float]:
    from orchestra.core.agents.presets import cli_invocation
    times = []
    for _ in range(turns):
        invocation = cli_invocation(agent, "Look at notes.txt and say whether anything needs changing", os.environ)
        began = time.perf_counter()
        subprocess.run(list(invocation.argv), cwd=repo, env={**os.environ, **invocation.env}, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=300, check=False)
        times.append(time.perf_counter() - began)
    return times


def through_fleet(repo: Path, turns: int) -> tuple[list[float], list[float], list[str]]:
    from orchestra.core.fleet import Fleet
    from orchestra.core.git.repo import open_repository
    from orchestra.core.score import load_score
    fleet = Fleet(open_repository(repo), load_score(repo / "orchestra.toml"))
    first, review, states = [], [], []
    for _ in range(turns):
        began = time.perf_counter()
        run = fleet.spawn("look")[0]
        seen = None
        while time.perf_counter() - began < 300:
            events, _ = fleet.store.read_events(run.id)
            if seen is None and any(e.get("type") == "output" for e in events):
                seen = time.perf_counter() - began
            now = fleet.get(run.id)
            if now.state not in ("queued", "working", "waiting"):
                break
            time.sleep(0.01)
        review.append(time.perf_counter() - began)
        first.append(seen if seen is not None else float("nan"))
        states.append(now.state if now.state == "review" else f"{now.state}: {now.message[:80]}")
        fleet.reject(run.id, "benchmark")
    return first, review, states


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--only", default="claude,codex,gemini,opencode")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="orchestra-cli-bench-"))
    missing = [cli for cli in args.only.split(",") if not os.environ.get(f"ORCHESTRA_{cli.upper()}_BIN")]
    if missing:
        raise SystemExit(f"set ORCHESTRA_<CLI>_BIN for {', '.join(missing)} (./dev test exports them)")
    rows = []
    for cli in args.only.split(","):
        isolate(base / cli, env={"BENCH_KEY": KEY})
        bin_dir = base / cli / "bin"
        bin_dir.mkdir()
        (bin_dir / cli).symlink_to(os.environ[f"ORCHESTRA_{cli.upper()}_BIN"])
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        os.environ["TMPDIR"] = str(base / cli / "tmp")  # codex makes no sandbox helper for a home under /tmp
        Path(os.environ["TMPDIR"]).mkdir()
        prepare_home(cli)
        server_class, text, model, extra = servers()[cli]
        with server_class(default=text(REPLY)) as server:
            repo = repository(base / cli / "repo", cli, server.url, model)
            agent = {"name": cli, "kind": "cli", "preset": cli, "model": model, "api_base": server.url,
                     "api_key_env": "BENCH_KEY", **extra}
            by_hand = direct(repo, agent, args.turns)
            first, review, states = through_fleet(repo, args.turns)
        overhead = [r - d for r, d in zip(sorted(review), sorted(by_hand))]
        rows.append((cli, by_hand, first, review, overhead, states))
    ms = lambda values: f"{statistics.median(values) * 1000:6.0f} ms"  # noqa: E731
    print(f"{'cli':<9} {'direct turn':>12} {'spawn->1st line':>16} {'spawn->review':>14} {'overhead/turn':>14}")
    for cli, by_hand, first, review, overhead, states in rows:
        print(f"{cli:<9} {ms(by_hand):>12} {ms(first):>16} {ms(review):>14} {ms(overhead):>14}"
              + ("" if all(s == "review" for s in states) else f"   (runs ended: {set(states)})"))
    print(f"medians of {args.turns} turns; overhead = spawn->review minus the direct turn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
