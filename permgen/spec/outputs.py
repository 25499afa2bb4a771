"""The files ``permgen compile --out`` writes, and checking a directory against them."""

from __future__ import annotations

from pathlib import Path

from permgen.spec.compile import CompiledSpec, bucket_policy_text, policy_text, terraform_text


def render_outputs(
    compiled: CompiledSpec, *, fmt: str = "json", indent: int | None = None
) -> dict[str, str]:
    """File name -> content for every compiled role (and, in JSON, every bucket policy as
    ``buckets/<bucket>.policy.json``)."""
    if fmt == "terraform":
        return {f"{name}.tf": terraform_text(r) for name, r in compiled.roles.items()}
    files = {
        f"{name}.json": policy_text(r.policy, indent=indent) for name, r in compiled.roles.items()
    }
    for name, policy in compiled.buckets.items():
        if policy is not None:
            files[f"buckets/{name}.policy.json"] = bucket_policy_text(policy, indent=indent)
    return files


def stale_outputs(directory: Path, files: dict[str, str], *, fmt: str = "json") -> list[str]:
    """Lines naming each file in ``directory`` that is stale, missing or extra.

    Extra means a file of the same kind (``*.json`` or ``*.tf``) that no role compiles to,
    such as the output of a role that was removed or renamed.
    """
    suffix = ".tf" if fmt == "terraform" else ".json"
    problems: list[str] = []
    for name, text in sorted(files.items()):
        path = directory / name
        try:
            current = path.read_text("utf-8")
        except FileNotFoundError:
            problems.append(f"missing: {path}")
            continue
        except OSError as exc:
            problems.append(f"unreadable: {path} ({exc.strerror})")
            continue
        except UnicodeDecodeError:  # not UTF-8, so not what permgen writes
            problems.append(f"stale:   {path}")
            continue
        if current != text:
            problems.append(f"stale:   {path}")
    if directory.is_dir():
        for path in sorted(directory.glob(f"*{suffix}")):
            if path.name not in files:
                problems.append(f"extra:   {path}")
        if fmt != "terraform" and (directory / "buckets").is_dir():
            for path in sorted((directory / "buckets").glob("*.policy.json")):
                if f"buckets/{path.name}" not in files:
                    problems.append(f"extra:   {path}")
    return problems


__all__ = ["render_outputs", "stale_outputs"]
