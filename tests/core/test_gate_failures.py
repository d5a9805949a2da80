"""A failed check's failing tests keep their own output: read from the JUnit report the check wrote, or
from pytest's failure sections in its log (only its end, when it is long), with where the full log is."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestra.core.base.redact import Redactor
from orchestra.core.gates.commands import gate_log_path, run_check
from orchestra.core.gates.failures import READ_LIMIT, failures_path, gate_output, pytest_failures
from orchestra.core.runs.run import Gate

PYTEST = f"PYTHONPATH=src {sys.executable} -m pytest -q -p no:cacheprovider"


def make_pytest_project(root: Path, tests: int = 300, failing: int = 40) -> Path:
    """A src-layout library and a suite of `tests` tests, the first `failing` of which fail with their own
    assertion: test_double_007 asserts double(7) == 15."""
    (root / "src" / "mylib").mkdir(parents=True)
    (root / "src" / "mylib" / "__init__.py").write_text("def double(n):\n    return 2 * n\n")
    (root / "tests").mkdir()
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    cases = [f"def test_double_{i:03d}():\n    assert double({i}) == {2 * i + (1 if i < failing else 0)}\n"
             for i in range(tests)]
    (root / "tests" / "test_mylib.py").write_text("from mylib import double\n\n\n" + "\n\n".join(cases))
    return root


async def check(project: Path, run_dir: Path, command: str = PYTEST, junit: str | None = None) -> Gate:
    return await run_check("pytest", command, project, "t" * 40, gate_log_path(run_dir, "pytest"), 120,
                           junit, redact=Redactor())


async def test_the_log_s_failure_sections_give_each_failing_test_its_assertion(tmp_path: Path) -> None:
    project = make_pytest_project(tmp_path / "project")
    gate = await check(project, tmp_path / "run")
    assert (gate.status, gate.failed, gate.passed) == ("failed", 40, 260)
    output = gate_output(gate_log_path(tmp_path / "run", "pytest"))
    assert output.source == "log" and not output.cut
    assert len(output.failures) == 40
    seventh = next(f for f in output.failures if f.name.endswith("test_double_007"))
    assert seventh.name == "tests/test_mylib.py::test_double_007"
    assert seventh.message.startswith("assert 14 == 15")
    assert "def test_double_007():" in seventh.text and "tests/test_mylib.py:" in seventh.text


async def test_a_junit_report_gives_each_failing_test_its_message_and_traceback(tmp_path: Path) -> None:
    project = make_pytest_project(tmp_path / "project")
    gate = await check(project, tmp_path / "run", f"{PYTEST} --junitxml=report.xml", "report.xml")
    assert (gate.status, gate.failed) == ("failed", 40)
    log = gate_log_path(tmp_path / "run", "pytest")
    assert failures_path(log).exists()
    output = gate_output(log)
    assert output.source == "junit" and len(output.failures) == 40
    seventh = next(f for f in output.failures if f.name.endswith("test_double_007"))
    assert seventh.message == "assert 14 == 15" and "def test_double_007():" in seventh.text


async def test_a_passing_rerun_leaves_no_old_failures_behind(tmp_path: Path) -> None:
    project = make_pytest_project(tmp_path / "project")
    await check(project, tmp_path / "run", f"{PYTEST} --junitxml=report.xml", "report.xml")
    (project / "src" / "mylib" / "__init__.py").write_text("def double(n):\n    return 2 * n + (n < 40)\n")
    gate = await check(project, tmp_path / "run", f"{PYTEST} --junitxml=report.xml", "report.xml")
    assert gate.status == "passed"
    assert not failures_path(gate_log_path(tmp_path / "run", "pytest")).exists()


def test_only_the_end_of_a_long_log_is_read_and_that_is_said(tmp_path: Path) -> None:
    log = tmp_path / "pytest.log"
    section = ["=" * 20 + " FAILURES " + "=" * 20, "_" * 10 + " test_late " + "_" * 10, "",
               "    def test_late():", ">       assert 1 == 2", "E       assert 1 == 2", "",
               "tests/test_x.py:9: AssertionError", "=" * 10 + " short test summary info " + "=" * 10,
               "FAILED tests/test_x.py::test_late - assert 1 == 2", "1 failed, 2 passed in 0.1s"]
    log.write_text("noise line\n" * 100_000 + "\n".join(section) + "\n")
    output = gate_output(log)
    assert output.cut and output.read == READ_LIMIT and output.size > 1_000_000
    assert [f.name for f in output.failures] == ["tests/test_x.py::test_late"]
    assert output.failures[0].message == "assert 1 == 2"


def test_a_section_begun_before_the_cut_still_counts() -> None:
    lines = ["E   assert 0", "_____ test_b _____", "E   assert 3 == 4", "===== short test summary info =====",
             "FAILED t.py::test_b - assert 3 == 4"]
    assert [f.name for f in pytest_failures(lines, cut=True)] == ["t.py::test_b"]
    assert pytest_failures(lines, cut=False) == []


def test_output_without_failure_sections_gives_its_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "lint.log"
    log.write_text("".join(f"src/app.py:{n}: E501 line too long\n" for n in range(100)))
    output = gate_output(log)
    assert output.source == "tail" and output.failures == [] and len(output.lines) == 60
    assert output.lines[-1] == "src/app.py:99: E501 line too long"


def test_a_missing_log_is_said_to_be_missing(tmp_path: Path) -> None:
    output = gate_output(tmp_path / "gates" / "gone.log")
    assert output.source == "missing" and output.log_path == tmp_path / "gates" / "gone.log"


async def test_a_secret_in_a_failing_test_s_report_is_redacted(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    (project / "tests" / "test_token.py").write_text(
        "def test_token():\n    assert 'token=s3cr3t-value-1234' == ''\n")
    log = gate_log_path(tmp_path / "run", "pytest")
    await run_check("pytest", f"{PYTEST} --junitxml=report.xml", project, "t" * 40, log, 120, "report.xml",
                    redact=Redactor({"MY_SERVICE_TOKEN": "s3cr3t-value-1234"}))
    saved = failures_path(log).read_text()
    assert "s3cr3t" not in saved and "[redacted MY_SERVICE_TOKEN]" in saved
