"""parse_diff against output of real git, plus edge cases and a speed sanity check."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestra.core.git.diffparse import DiffLine, ParsedDiff, parse_diff, unquote_path
from tests.conftest import git


@pytest.fixture
def changed(repo: Path) -> ParsedDiff:
    """Stage a mix of changes in `repo` and parse `git diff --cached --no-color -M`."""
    (repo / "notes.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    (repo / "old.sql").write_text("-- old comment\nselect 1;\n")
    (repo / "logo.bin").write_bytes(b"\x00\x01\x02binary")
    (repo / "run.sh").write_text("echo hi\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "more files")

    (repo / "src" / "app.py").write_text("def answer():\n    return 42\n")
    (repo / "README.md").unlink()
    git(repo, "mv", "notes.txt", "docs notes.txt")
    (repo / "docs notes.txt").write_text(
        "".join(f"line {n}\n" for n in range(1, 11)) + "line 11\n"
    )
    (repo / "old.sql").write_text("select 1;\n")
    (repo / "logo.bin").write_bytes(b"\x00\x03\x04binary!")
    (repo / "run.sh").chmod(0o755)
    (repo / "my file.py").write_text("print('hi')\nprint('there')")
    (repo / "tést.py").write_text("x = 1\n")
    (repo / 'quo"te.txt').write_text("q\n")
    git(repo, "add", "-A")
    return parse_diff(git(repo, "diff", "--cached", "--no-color", "-M"))


def _by_path(parsed: ParsedDiff) -> dict[str, object]:
    return {file.path: file for file in parsed.files}


def _lines_of(parsed: ParsedDiff, path: str) -> list[DiffLine]:
    return [line for line in parsed.lines if line.path == path]


def test_statuses_paths_and_counts(changed: ParsedDiff) -> None:
    files = _by_path(changed)
    assert set(files) == {
        "src/app.py", "README.md", "docs notes.txt", "old.sql", "logo.bin",
        "run.sh", "my file.py", "tést.py", 'quo"te.txt',
    }
    summary = {path: (f.status, f.added, f.removed) for path, f in files.items()}
    assert summary["src/app.py"] == ("modified", 1, 1)
    assert summary["README.md"] == ("deleted", 0, 1)
    assert summary["docs notes.txt"] == ("renamed", 1, 0)
    assert summary["old.sql"] == ("modified", 0, 1)
    assert summary["logo.bin"] == ("binary", 0, 0)
    assert summary["run.sh"] == ("modified", 0, 0)
    assert summary["my file.py"] == ("added", 2, 0)
    assert summary["tést.py"] == ("added", 1, 0)
    assert summary['quo"te.txt'] == ("added", 1, 0)
    assert files["docs notes.txt"].old_path == "notes.txt"
    assert all(f.old_path is None for p, f in files.items() if p != "docs notes.txt")


def test_first_line_points_at_each_file_header(changed: ParsedDiff) -> None:
    for file in changed.files:
        header = changed.lines[file.first_line]
        assert header.kind == "file" and header.path == file.path
    assert changed.lines[_by_path(changed)["docs notes.txt"].first_line].text == (
        "notes.txt → docs notes.txt"
    )
    assert sum(line.kind == "file" for line in changed.lines) == len(changed.files)


def test_line_numbers_and_prefixes(changed: ParsedDiff) -> None:
    app = [(l.kind, l.text, l.old_no, l.new_no) for l in _lines_of(changed, "src/app.py")]
    assert ("ctx", "def answer():", 1, 1) in app
    assert ("del", "    return 41", 2, None) in app
    assert ("add", "    return 42", None, 2) in app
    renamed = _lines_of(changed, "docs notes.txt")
    assert ("add", "line 11", None, 11) in [(l.kind, l.text, l.old_no, l.new_no) for l in renamed]
    assert renamed[-2].kind == "ctx" and renamed[-2].old_no == renamed[-2].new_no == 10


def test_removed_line_that_looks_like_a_header(changed: ParsedDiff) -> None:
    sql = _lines_of(changed, "old.sql")
    assert ("del", "-- old comment", 1) in [(l.kind, l.text, l.old_no) for l in sql]
    assert ("ctx", "select 1;", 2) in [(l.kind, l.text, l.old_no) for l in sql]


def test_meta_lines(changed: ParsedDiff) -> None:
    kinds = {(l.path, l.kind, l.text.split(" ")[0]) for l in changed.lines if l.kind == "meta"}
    assert ("my file.py", "meta", "\\") in kinds  # \ No newline at end of file
    assert ("run.sh", "meta", "old") in kinds and ("run.sh", "meta", "new") in kinds
    assert ("logo.bin", "meta", "Binary") in kinds
    assert ("docs notes.txt", "meta", "rename") in kinds


def test_quoted_and_escaped_paths() -> None:
    assert unquote_path('"t\\303\\251st.py"') == "tést.py"
    assert unquote_path('"a\\tb\\"c\\\\"') == 'a\tb"c\\'
    assert unquote_path("plain name") == "plain name"


def test_mode_only_change_with_spaces_in_path() -> None:
    text = "diff --git a/my dir/x y.sh b/my dir/x y.sh\nold mode 100644\nnew mode 100755\n"
    parsed = parse_diff(text)
    assert [f.path for f in parsed.files] == ["my dir/x y.sh"]
    assert [l.kind for l in parsed.lines] == ["file", "meta", "meta"]


def test_empty_and_non_diff_input() -> None:
    assert parse_diff("") == ParsedDiff(files=(), lines=())
    assert parse_diff("commit abc\nAuthor: x\n\n    message\n").files == ()


def big_diff(files: int = 40, lines_per_file: int = 500) -> str:
    """A synthetic diff with `lines_per_file` changed lines in each of `files` files."""
    out: list[str] = []
    for n in range(files):
        out += [f"diff --git a/pkg/mod{n}.py b/pkg/mod{n}.py", "index 1111111..2222222 100644",
                f"--- a/pkg/mod{n}.py", f"+++ b/pkg/mod{n}.py",
                f"@@ -1,{lines_per_file // 2} +1,{lines_per_file // 2} @@"]
        for i in range(lines_per_file // 2):
            out += [f"-    value_{i} = compute({i})  # old", f"+    value_{i} = compute({i} + 1)"]
    return "\n".join(out) + "\n"


def test_parses_a_20000_line_diff_quickly() -> None:
    text = big_diff()
    start = time.perf_counter()
    parsed = parse_diff(text)
    elapsed = time.perf_counter() - start
    assert len(parsed.lines) == 40 * 503  # file, index and hunk lines + 500 per file
    assert sum(f.added + f.removed for f in parsed.files) == 20_000
    assert elapsed < 1.0  # sanity bound only; see benchmarks/diff_view_bench.py
