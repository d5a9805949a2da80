"""Benchmark: orchestra's own overhead for a review gate on a 2,000-line diff, against the fake model server.

Run with the project's venv python:

    .venv/bin/python benchmarks/review_gate_bench.py [--reviews N] [--lines N]

In a temporary HOME and repository, a shell agent writes a change of --lines added lines (2,000 by default,
in 8 files) and an llm reviewer (the fake OpenAI-compatible server, which answers at once with findings
JSON) reviews it. Once the run has settled, the review gate is produced N more times in this process
exactly as the supervisor produces it (supervise.reviewing.review_run: the diff and prompts, the reviewer's
read-only jail, the llm client, the warm llm host, the tool runner, the answer read and validated, the
verdict), and timed. Model time is what the fake server spends between receiving a request and sending
the last byte of its answer; it is measured by the server's clock and subtracted. Target <= 300 ms.
It prints a table and exits 0 (it does not fail on a missed target).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from benchkit import git, isolate  # noqa: E402


def make_repo(path: Path, url: str, lines: int) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "src").mkdir()
    per_file = lines // 8
    body = "".join(f"    total += compute({n}, factor={n % 7})  # step {n}\\n" for n in range(per_file))
    writes = "mkdir -p src && " + " && ".join(f"printf 'def f{i}(total):\\n{body}    return total\\n' > src/m{i}.py" for i in range(8))
    (path / "orchestra.toml").write_text(
        '[review]\nagents = ["critic"]\n'
        f"[[agents]]\nname = \"author\"\nkind = \"shell\"\ncommand = '''{writes}'''\n"
        f'[[agents]]\nname = "critic"\nkind = "llm"\nrole = "review"\nmodel = "openai/claude-fake"\n'
        f'api_base = "{url}"\napi_key_env = "FAKE_PROVIDER_KEY"\n'
        '[[specs]]\nid = "work"\nintent = "Add the eight step functions"\nallow = ["src/**"]\n')
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reviews", type=int, default=15)
    parser.add_argument("--lines", type=int, default=2000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="orchestra-review-bench-"))
    isolate(base, env={"FAKE_PROVIDER_KEY": "sk-bench-0123456789", "ORCHESTRA_LLM_HOST_SOCKET":
                       str(base / "llm" / "host.sock")})
    from tests.harness.fake_openai import FakeOpenAI, text

    answer = json.dumps({"findings": [], "explanation": "Fine."})  # every part gets it (the default budget cuts
    # a 2,000-line diff into parts)
    with FakeOpenAI(default=text(answer)) as server:
        served = instrument(server)
        from orchestra.core.fleet import Fleet
        from orchestra.core.git.repo import open_repository
        from orchestra.core.score import load_score
        from orchestra.core.supervise.reviewing import review_run
        from orchestra.core.supervise.secrets import run_redactor

        repo = open_repository(make_repo(base / "repo", server.url, args.lines))
        fleet = Fleet(repo, load_score(repo.score_path))
        run = fleet.spawn("work")[0]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = fleet.get(run.id)
            gate = run.gates.get("review-critic")
            if run.state == "review" and gate and gate.status not in ("pending", "running"):
                break
            time.sleep(0.2)
        if gate is None:
            raise SystemExit(f"the run did not settle: {run.state} {run.message} {list(run.gates)}")
        print(f"run {run.id}: +{run.lines_added} lines in {run.files_changed} files; first review: {gate.summary}")
        reviewer = run.reviewers()[0]
        store = fleet.store
        store.redact = run_redactor(run)
        supervisor = SimpleNamespace(store=store)
        totals, model = [], []
        for _ in range(args.reviews):
            served.clear()
            started = time.perf_counter()
            gate = asyncio.run(review_run(supervisor, run, reviewer, run.tree))
            totals.append(time.perf_counter() - started)
            model.append(sum(served))
            parts = len(served)
            assert gate.verdict == "approved", gate.summary
        overhead = [t - m for t, m in zip(totals, model)]
        ms = lambda values: f"{statistics.median(values) * 1000:7.1f} ms (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"  # noqa: E731
        print(f"review gate, whole        {ms(totals)}   ({parts} model request(s): the diff's parts)")
        print(f"  of which model (server) {ms(model)}")
        print(f"  orchestra's overhead    {ms(overhead)}   target <= 300 ms")
        fleet.reject(run.id, "benchmark done")
    return 0


def instrument(server) -> list[float]:
    """Seconds the fake server spends per chat request (receipt to last byte), appended to the returned list."""
    spent: list[float] = []
    handler = server._server.RequestHandlerClass  # noqa: SLF001
    original = handler.do_POST

    def timed(self) -> None:
        started = time.perf_counter()
        try:
            original(self)
        finally:
            spent.append(time.perf_counter() - started)

    handler.do_POST = timed
    return spent


if __name__ == "__main__":
    os.environ.setdefault("ORCHESTRA_LLM_RETRY_BASE", "0.05")
    sys.exit(main())
