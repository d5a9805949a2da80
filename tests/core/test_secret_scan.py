"""The secret scan: detect-secrets on the lines a candidate adds, never on what the target already holds,
never quoting the secret, never online; and the added lines it reads, straight from git."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from orchestra.core.gates.secret_scan import MAX_LINE, scan_gate
from orchestra.core.git.added import added_text
from orchestra.core.runs.run import Gate
from tests.conftest import git

# Well-known example values (AWS's documentation key and the like), not real credentials.
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"  # pragma: allowlist secret
HEX_TOKEN = "8f7d3c2b1a9e8d7c6b5a4f3e2d1c0b9a8f7d6e5c"  # pragma: allowlist secret
PEM_HEADER = "-----BEGIN RSA PRIVATE KEY-----"  # pragma: allowlist secret
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # pragma: allowlist secret


def commit(root: Path, files: dict[str, str | bytes], message: str = "change") -> str:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def scan(root: Path, since: str) -> Gate:
    """The secrets gate of HEAD since `since`, read from the git directory as the verifier does."""
    return scan_gate(root / ".git", since, git(root, "rev-parse", "HEAD^{tree}"))


def places(gate: Gate) -> list[tuple[str, int, str]]:
    return sorted((f["path"], f["line_start"], f["rule"]) for f in gate.findings)


def test_secrets_in_added_lines_are_p0_findings_and_fail_the_gate(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"config.py": f'DEBUG = True\nAWS_ACCESS_KEY_ID = "{AWS_KEY}"\nsession = "{HEX_TOKEN}"\n',
                  "deploy/key.pem": f"{PEM_HEADER}\n"})

    gate = scan(repo, base)

    assert (gate.name, gate.kind, gate.status) == ("secrets", "secrets", "failed")
    assert gate.tree == git(repo, "rev-parse", "HEAD^{tree}")
    assert ("config.py", 2, "AWS Access Key") in places(gate)
    assert ("config.py", 3, "Hex High Entropy String") in places(gate)
    assert ("deploy/key.pem", 1, "Private Key") in places(gate)
    assert {f["priority"] for f in gate.findings} == {"P0"} and {f["source"] for f in gate.findings} == {"secrets"}
    assert all(f["title"] == f"Possible secret: {f['rule']}" and f["line_end"] == f["line_start"]
               for f in gate.findings)
    assert gate.summary == f"{len(gate.findings)} possible secrets"
    assert gate.details["lines"] == 4 and gate.details["files"] == 2


def test_the_secret_itself_appears_nowhere_in_the_gate(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"config.py": f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\nsession = "{HEX_TOKEN}"\n'})
    gate = scan(repo, base)
    assert gate.status == "failed"
    stored = json.dumps(asdict(gate)) + json.dumps(gate.evidence())
    for secret in (AWS_KEY, HEX_TOKEN):
        pieces = {secret[i:i + 8] for i in range(len(secret) - 7)}
        assert not [piece for piece in pieces if piece in stored], secret


def test_a_secret_the_target_already_holds_in_an_unchanged_line_passes(repo: Path) -> None:
    commit(repo, {"config.py": f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\nDEBUG = False\n'}, "legacy secret")
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"config.py": f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\nDEBUG = True\n'})
    git(repo, "mv", "config.py", "settings.py")  # moved too: a rename adds no lines
    git(repo, "commit", "-q", "-m", "move")
    gate = scan(repo, base)
    assert (gate.status, gate.summary, gate.findings) == ("passed", "no secrets found", [])
    assert gate.details["lines"] == 1


def test_a_clean_diff_passes(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"src/app.py": "def answer():\n    return 42\n", "docs/notes.md": "# Notes\n\nNothing secret.\n"})
    gate = scan(repo, base)
    assert (gate.status, gate.summary, gate.findings) == ("passed", "no secrets found", [])
    assert gate.details == {"scanner": "detect-secrets", "files": 2, "lines": 4, "lines_cut": 0}


def test_binary_files_are_not_scanned(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"assets/blob.bin": b"\x00\x01\x02" + f'key = "{AWS_KEY}"\n'.encode() + b"\x00" * 64})
    gate = scan(repo, base)
    assert (gate.status, gate.details["files"]) == ("passed", 0)


def test_a_line_with_the_allowlist_pragma_is_not_reported(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"tests/fixtures.py": (
        f'EXAMPLE_KEY = "{AWS_KEY}"  # pragma: allowlist secret\n'
        "# pragma: allowlist nextline secret\n"
        f'OTHER_EXAMPLE = "{AWS_KEY}"\n'
        "\n"
        f'REAL_LOOKING = "{AWS_KEY}"\n')})
    gate = scan(repo, base)
    assert places(gate) == [("tests/fixtures.py", 5, "AWS Access Key")]


def test_only_the_start_of_a_very_long_line_is_scanned(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    filler = "var a=" + ",".join(["1"] * MAX_LINE)
    commit(repo, {"dist/app.min.js": f'var k="{AWS_KEY}";{filler}\n{filler};var k2="{AWS_KEY}";\n'})
    gate = scan(repo, base)
    assert places(gate) == [("dist/app.min.js", 1, "AWS Access Key")]
    assert gate.details["lines_cut"] == 2


def test_the_scan_never_reaches_the_network(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the secret scan tried to reach the network")

    monkeypatch.setattr(requests.Session, "request", refuse)
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)
    base = git(repo, "rev-parse", "HEAD")
    # An AWS key with its secret next to it is what detect-secrets' AWS plugin would try online.
    commit(repo, {"aws.py": f'aws_access_key_id = "{AWS_KEY}"\naws_secret_access_key = "{AWS_SECRET}"\n'})
    assert scan(repo, base).status == "failed"


def test_the_scanner_s_global_settings_are_left_as_they_were(repo: Path) -> None:
    from detect_secrets.settings import get_settings

    before = get_settings().json()
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"config.py": f'key = "{AWS_KEY}"\n'})
    scan(repo, base)
    assert get_settings().json() == before


# --- the added lines, as git gives them -----------------------------------------------------------


def test_added_lines_carry_their_new_line_numbers_across_hunks(repo: Path) -> None:
    old = "".join(f"line {n}\n" for n in range(1, 21))
    base = commit(repo, {"a.txt": old, "gone.txt": "bye\n"})
    new = old.replace("line 3\n", "line three\n").replace("line 10\n", "").replace("line 15\n", "line 15\nextra\n")
    (repo / "gone.txt").unlink()
    commit(repo, {"a.txt": new})
    assert added_text(repo / ".git", base, "HEAD") == {"a.txt": [(3, "line three"), (15, "extra")]}


def test_added_lines_that_look_like_diff_headers_are_content(repo: Path) -> None:
    base = commit(repo, {"notes.txt": "keep\n-- old\n"})
    commit(repo, {"notes.txt": "keep\n++ b/elsewhere\n+++ b/other\n--- a/x\n@@ -1 +1 @@\ndiff --git a b\n"})
    assert added_text(repo / ".git", base, "HEAD") == {"notes.txt": [
        (2, "++ b/elsewhere"), (3, "+++ b/other"), (4, "--- a/x"), (5, "@@ -1 +1 @@"), (6, "diff --git a b")]}


def test_added_lines_keep_odd_names_and_carriage_returns(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"docs/my notes.txt": "one\r\ntwo\rstill two\n", "naïve.txt": "no newline at the end"})
    assert added_text(repo / ".git", base, "HEAD") == {
        "docs/my notes.txt": [(1, "one\r"), (2, "two\rstill two")], "naïve.txt": [(1, "no newline at the end")]}


def test_a_public_ip_address_is_not_a_secret() -> None:
    from orchestra.core.gates.secret_scan import scan_added
    assert scan_added({"hosts.py": [(1, 'RESOLVER = "8.8.8.8"')]}) == []


def test_a_keyword_naming_a_variable_or_a_plain_word_is_no_secret_but_a_password_is() -> None:
    from orchestra.core.gates.secret_scan import scan_added
    quiet = [(1, 'api_key_env = "OPENAI_API_KEY"'), (2, 'SECRETS_GATE = "secrets"'), (3, 'token_kind = "bearer"')]
    assert scan_added({"a.py": quiet}) == []
    loud = scan_added({"b.py": [(1, 'password = "hunter2hunter2"'), (2, 'API_KEY = "sk-abcd1234efgh5678ijkl"')]})
    assert sorted(f.line_start for f in loud) == [1, 2] and all(f.priority == "P0" for f in loud)
