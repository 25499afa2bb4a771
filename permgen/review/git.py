"""Reading a spec as it was at a git revision.

``review`` compiles a spec twice: in the working tree and at a base revision. At the base
revision the spec file and its user-template directory are read with ``git show`` into a
temporary directory, so the working tree is never touched.
"""

from __future__ import annotations

import os
import posixpath
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


def _relative(root: Path, path: Path) -> str:
    """``path`` relative to ``root``, resolving only its folder (never the file itself, which
    may be a symlink in the working tree)."""
    full = path.parent.resolve() / path.name
    try:
        return full.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise GitError(f"{path} is outside the repository {root}") from None


def show(root: Path, rev: str, path: Path) -> bytes | None:
    """The content of ``path`` (relative to ``root``) at ``rev``, or None when it is absent."""
    rel = _relative(root, path)
    try:
        proc = subprocess.run(
            ["git", "show", f"{rev}:{rel}"], cwd=root, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    if proc.returncode != 0:
        return None
    return proc.stdout


def _blob(root: Path, sha: str) -> bytes:
    try:
        proc = subprocess.run(["git", "cat-file", "blob", sha], cwd=root, capture_output=True)
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    if proc.returncode != 0:
        raise GitError(f"git cat-file blob {sha}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def export_dir(root: Path, rev: str, rel: str, target: Path, label: str = "") -> bool:
    """Write the tree ``rel`` (a normalised path relative to ``root``) at ``rev`` into
    ``target``; False if it did not exist.

    Files are written from their blobs, never through the working tree. A symlink in the
    tree is written as a symlink with the same target when that target stays inside the
    repository (the template loader refuses symlinks, so it is never followed); one that
    points outside the repository is an :class:`~permgen.errors.InputError`. Submodules are
    skipped.
    """
    listing = _git(
        ["--literal-pathspecs", "ls-tree", "-r", "-z", "--full-tree", rev, "--", rel], root
    ).split("\0")
    files: list[tuple[str, str]] = []
    links: list[tuple[str, str]] = []
    for entry in filter(None, listing):
        meta, _, name = entry.partition("\t")
        mode, kind, sha = meta.split()
        if rel != "." and name != rel and not name.startswith(rel + "/"):
            continue
        if mode == "120000":
            links.append((name, sha))
        elif kind == "blob":
            files.append((name, sha))
    if not files and not links:
        return False
    target.mkdir(parents=True, exist_ok=True)
    for name, sha in files:
        dest = target / Path(name).relative_to(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "wb") as fh:
            fh.write(_blob(root, sha))
    for name, sha in links:  # after the files, so no file is ever written through one
        link = _blob(root, sha).decode("utf-8", errors="replace")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
        if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
            where = f" at base revision {label}" if label else f" at {rev[:12]}"
            raise InputError(
                f"{name} is a symlink{where} that points outside the repository ({link!r}); "
                "templates must be regular files"
            )
        if name == rel:  # the folder itself is a symlink (then git lists nothing under it)
            if files or len(links) > 1:
                raise InputError(f"{name} is both a symlink and a folder at {rev[:12]}")
            target.rmdir()
            os.symlink(link, target)
            continue
        dest = target / Path(name).relative_to(rel)
        if any(p.is_symlink() for p in (dest.parent, *dest.parent.parents) if target in p.parents):
            raise InputError(f"{name} is under another symlink at {rev[:12]}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link, dest)
    return True


def tracked(root: Path, folder: Path) -> frozenset[str]:
    """The files git tracks (in the index) under ``folder``, relative to ``folder``."""
    rel = folder.resolve().relative_to(root.resolve()).as_posix()
    out = _git(["--literal-pathspecs", "ls-files", "-z", "--full-name", "--", rel], root)
    prefix = "" if rel == "." else rel + "/"
    return frozenset(p[len(prefix) :] for p in out.split("\0") if p.startswith(prefix) and p)


__all__ = ["GitError", "default_base", "export_dir", "repo_root", "resolve", "show", "tracked"]
