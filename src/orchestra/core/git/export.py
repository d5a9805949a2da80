"""Write a commit's files into a directory (with some files of another tree on top): the trees checks run
on besides the candidate's, such as the merge base's for a benchmark or a proving test run.

A scratch index is filled with `read-tree` and written out with `checkout-index`: git's own checkout, so
the files are exactly what a checkout of the commit holds (modes, symlinks, line endings and filters as
the repository's attributes say), and it costs one pass over the files. `git archive` would be slower
(every file goes through a tar stream, then is unpacked by Python) and is not faithful: it honours
`export-ignore` and `export-subst`, which leave out or rewrite files. No ref, worktree record or index
of the repository is touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from orchestra.core.git.runner import git

# Whatever the repository configures: every file written (no sparse checkout), no ref or index touched.
_EXPORT_CONFIG = ("-c", "core.sparseCheckout=false", "-c", "core.sparseCheckoutCone=false")


def tree_listing(git_dir: Path, treeish: str, paths: Sequence[str]) -> str:
    """`ls-tree` lines (mode, type, object, path; NUL-terminated) of the files at paths in treeish; a
    path that names nothing there is left out. The same listing names the same contents."""
    if not paths:
        return ""
    return git(git_dir, "ls-tree", "-r", "-z", "--full-tree", treeish, "--", *paths,
               env={"GIT_LITERAL_PATHSPECS": "1"})


def export_tree(git_dir: Path, commit: str, dest: Path, overlay: Sequence[str] = (),
                overlay_from: str | None = None) -> None:
    """Write commit's files into dest (created; it must be empty), with the files at overlay paths taken
    from overlay_from's tree on top (a path it does not hold is left as commit has it)."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty")
    index = dest.parent / f".{dest.name}.index"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        git(git_dir, *_EXPORT_CONFIG, "read-tree", commit, env=env)
        listing = tree_listing(git_dir, overlay_from or commit, overlay) if overlay else ""
        if listing:
            git(git_dir, "update-index", "-z", "--index-info", env=env, input=listing)
        git(git_dir, *_EXPORT_CONFIG, "--work-tree", os.fspath(dest), "checkout-index", "--all", "--force",
            env=env)
    finally:
        index.unlink(missing_ok=True)
