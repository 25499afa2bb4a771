"""Reading a spec as it was at a git revision.

``review`` compiles a spec twice: in the working tree and at a base revision. At the base
revision the spec file and its user-template directory are read with ``git show`` into a
temporary directory, so the working tree is never touched.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from permgen.errors import InputError, UsageError


class GitError(InputError):
    """git could not answer (not a repository, unknown revision, file absent at a revision)."""


def _git(args: list[str], cwd: Path) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UsageError("git is not installed (review reads specs from git revisions)") from None
    if proc.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout


def repo_root(path: Path) -> Path:
    """The top of the git work tree that holds ``path``."""
    start = path if path.is_dir() else path.parent
    return Path(_git(["rev-parse", "--show-toplevel"], start.resolve() or Path.cwd()).strip())


def default_base(root: Path) -> str:
    """The merge base of HEAD with the default branch (origin's HEAD, else main, else master)."""
    candidates = []
    try:
        ref = _git(["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"], root).strip()
        candidates.append(ref)
    except GitError:
        pass
    candidates += ["origin/main", "origin/master", "main", "master"]
    for ref in candidates:
        try:
            _git(["rev-parse", "--verify", "--quiet", ref + "^{commit}"], root)
        except GitError:
            continue
        return _git(["merge-base", "HEAD", ref], root).strip()
    raise UsageError("cannot find the default branch to compare with; pass --base REV")


def resolve(root: Path, rev: str) -> str:
    """The full commit id of ``rev``."""
    try:
        return _git(["rev-parse", "--verify", "--quiet", rev + "^{commit}"], root).strip()
    except GitError:
        raise GitError(f"unknown revision {rev!r}") from None


def show(root: Path, rev: str, path: Path) -> bytes | None:
    """The content of ``path`` (relative to ``root``) at ``rev``, or None when it is absent."""
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    try:
        proc = subprocess.run(
            ["git", "show", f"{rev}:{rel}"], cwd=root, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    if proc.returncode != 0:
        return None
    return proc.stdout


def export_dir(root: Path, rev: str, directory: Path, target: Path) -> bool:
    """Copy the files of ``directory`` at ``rev`` into ``target``; False if it did not exist."""
    rel = directory.resolve().relative_to(root.resolve()).as_posix()
    listing = _git(["ls-tree", "-r", "--name-only", rev, "--", rel], root).splitlines()
    if not listing:
        return False
    for name in listing:
        content = show(root, rev, root / name)
        if content is None:  # pragma: no cover - listed just above
            continue
        dest = target / Path(name).relative_to(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
    return True


__all__ = ["GitError", "default_base", "export_dir", "repo_root", "resolve", "show"]
