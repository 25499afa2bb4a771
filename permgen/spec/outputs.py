"""The files ``permgen compile --out`` writes, and checking a directory against them."""

from __future__ import annotations

from pathlib import Path

from permgen.spec.compile import CompiledSpec, bucket_policy_text, policy_text, terraform_text


def render_outputs(
    compiled: CompiledSpec,
    *,
    fmt: str = "json",
    indent: int | None = None,
    import_existing: bool = False,
) -> dict[str, str]:
    """File name -> content for every compiled role, and for the spec's ``buckets:``: in
    JSON every bucket policy as ``buckets/<bucket>.policy.json``, in Terraform every bucket
    as ``buckets/<bucket>.tf`` (:mod:`permgen.spec.bucket_terraform`)."""
    if fmt == "terraform":
        from permgen.spec.bucket_terraform import buckets_terraform

        files = {
            f"{name}.tf": terraform_text(r, import_existing=import_existing)
            for name, r in compiled.roles.items()
        }
        files.update(
            buckets_terraform(
                compiled.spec.buckets,
                compiled.buckets,
                compiled.spec.account,
                import_existing=import_existing,
            )
        )
        return files
    files = {
        f"{name}.json": policy_text(r.policy, indent=indent) for name, r in compiled.roles.items()
    }
    for name, policy in compiled.buckets.items():
        if policy is not None:
            files[f"buckets/{name}.policy.json"] = bucket_policy_text(policy, indent=indent)
    return files


def hcl_layout(text: str) -> list[str]:
    """``text``'s lines with the spaces and tabs outside string literals removed, and blank
    lines dropped: what ``terraform fmt`` may change (alignment, spacing around ``=`` and
    ``:``) is gone, while every string (a name, an ARN, a condition value) is kept byte for
    byte. Two files with the same layout are the same HCL."""
    out = []
    for line in text.splitlines():
        kept: list[str] = []
        in_string = escaped = False
        for ch in line:
            if in_string:
                kept.append(ch)
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
                kept.append(ch)
            elif ch not in " \t\r":
                kept.append(ch)
        if kept:
            out.append("".join(kept))
    return out


def stale_outputs(directory: Path, files: dict[str, str], *, fmt: str = "json") -> list[str]:
    """Lines naming each file in ``directory`` that is stale, missing or extra.

    Extra means a file of the same kind (``*.json`` or ``*.tf``, and in ``buckets/``
    ``*.policy.json`` or ``*.tf``) that nothing in the spec compiles to, such as the output of
    a role or bucket that was removed or renamed.
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
        if current != text and not (fmt == "terraform" and hcl_layout(current) == hcl_layout(text)):
            problems.append(f"stale:   {path}")
    if directory.is_dir():
        for path in sorted(directory.glob(f"*{suffix}")):
            if path.name not in files:
                problems.append(f"extra:   {path}")
        if (directory / "buckets").is_dir():
            pattern = "*.tf" if fmt == "terraform" else "*.policy.json"
            for path in sorted((directory / "buckets").glob(pattern)):
                if f"buckets/{path.name}" not in files:
                    problems.append(f"extra:   {path}")
    return problems


__all__ = ["hcl_layout", "render_outputs", "stale_outputs"]
