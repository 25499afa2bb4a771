"""What a schema cannot say about a spec: CIDR blocks, prefixes and placeholders, options per
template, known templates, and where a ``templates:`` folder may be."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePath
from typing import Any

from permgen.spec.schema import show
from permgen.spec.types import (
    BUILTIN_OPTIONS,
    BUILTIN_TEMPLATES,
    PLACEHOLDER_NAME_RE,
    PLACEHOLDER_RE,
    Problem,
)


def _check_cidr(value: str) -> str | None:
    import ipaddress

    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=True)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        if "/" in value:
            try:
                net = ipaddress.ip_network(value, strict=False)
            except ValueError:
                return f"{value!r} is not an IP address or CIDR block"
            return f"{value!r} has host bits set; did you mean {str(net)!r}?"
        return f"{value!r} is not an IP address or CIDR block"
    return None


def _check_prefix(prefix: str) -> str | None:
    if prefix.startswith("/"):
        return f"{prefix!r}: object keys do not start with '/'"
    if "*" in prefix or "?" in prefix:
        return f"{prefix!r}: wildcards are not allowed in prefixes (a prefix already covers everything below it)"
    if any(part == ".." for part in prefix.split("/")):
        return f"{prefix!r}: '..' is not allowed in prefixes"
    if "${" in prefix:
        return f"{prefix!r}: '${{' is not allowed in prefixes"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in prefix):
        return f"{prefix!r}: control characters are not allowed in prefixes"
    rest = PLACEHOLDER_RE.sub("", prefix)
    if "{" in rest or "}" in rest:
        return f"{prefix!r}: unbalanced '{{' or '}}' (placeholders are written {{name}})"
    for name in PLACEHOLDER_RE.findall(prefix):
        if not PLACEHOLDER_NAME_RE.fullmatch(name):
            return f"{prefix!r}: {{{name}}} is not a valid placeholder name (letters, digits, _)"
    return None


_RAW_EXCLUDES = ("template", "grants", "options", "conditions", "sts")


def _raw_role_problems(role: dict[str, Any], base: tuple[Any, ...]) -> list[Problem]:
    """A role is either template + grants or a raw ``policy:`` document, never both; a raw
    policy is kept as written, so it takes no options, conditions or sts: block."""
    if "policy" not in role:
        key = "grants" if "template" in role else "template"
        return [
            Problem(
                base,
                f"a role needs template and grants, or a raw policy; {key!r} is missing",
                missing=key,
            )
        ]
    clash = [k for k in _RAW_EXCLUDES if k in role]
    if clash:
        return [
            Problem(
                base + (clash[0],),
                f"a role with a raw policy takes no {clash[0]!r} (the document is kept as written)",
            )
        ]
    from permgen.errors import PolicyParseError
    from permgen.policy.model import parse_policy

    try:
        parse_policy(json.dumps(role["policy"]), source="policy")
    except PolicyParseError as exc:
        where = f" at {exc.path}" if exc.path else ""
        return [Problem(base + ("policy",), f"not a valid RAM policy{where}: {exc.detail}")]
    return []


def semantic_problems(data: dict[str, Any], user_templates: set[str] | None) -> list[Problem]:
    import difflib

    problems: list[Problem] = []
    defaults = data.get("defaults") or {}

    def conditions_problems(block: Any, base: tuple[Any, ...]) -> None:
        if not isinstance(block, dict):
            return
        for i, ip in enumerate(block.get("source_ip") or []):
            msg = _check_cidr(ip)
            if msg:
                problems.append(Problem(base + ("source_ip", i), msg))

    conditions_problems(defaults.get("conditions"), ("defaults", "conditions"))
    for name, role in (data.get("roles") or {}).items():
        base: tuple[Any, ...] = ("roles", name)
        conditions_problems(role.get("conditions"), base + ("conditions",))
        if "policy" in role or "template" not in role or "grants" not in role:
            problems += _raw_role_problems(role, base)
            continue
        template = role["template"]
        has_sts = "sts" in role
        for gi, grant in enumerate(role["grants"]):
            for pi, prefix in enumerate(grant.get("prefixes", [""])):
                where = base + ("grants", gi, "prefixes", pi)
                msg = _check_prefix(prefix)
                if msg:
                    problems.append(Problem(where, msg))
                    continue
                names = PLACEHOLDER_RE.findall(prefix)
                if names and not has_sts:
                    problems.append(
                        Problem(
                            where,
                            f"placeholder {{{names[0]}}} is only allowed in a role with an sts: block "
                            "(placeholders are filled in when a token is minted)",
                        )
                    )
        if template in BUILTIN_OPTIONS:
            allowed = BUILTIN_OPTIONS[template]
            for key, value in (role.get("options") or {}).items():
                if key not in allowed:
                    hint = difflib.get_close_matches(key, list(allowed), n=1)
                    takes = ", ".join(allowed) or "no options"
                    extra = f"; did you mean {hint[0]!r}?" if hint else f" (it takes: {takes})"
                    problems.append(
                        Problem(
                            base + ("options", key),
                            f"template {template} has no option {key!r}{extra}",
                        )
                    )
                elif not isinstance(value, bool):
                    problems.append(
                        Problem(
                            base + ("options", key), f"expected true or false, got {show(value)}"
                        )
                    )
        elif user_templates is not None and template not in user_templates:
            choices = list(dict.fromkeys([*BUILTIN_TEMPLATES, *sorted(user_templates)]))
            hint = difflib.get_close_matches(template, choices, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(choices)})"
            problems.append(Problem(base + ("template",), f"unknown template {template!r}{extra}"))
    problems.extend(bucket_problems(data, conditions_problems))
    return problems


def _resource_problem(bucket: str, resource: str) -> str | None:
    """Why a bucket-policy resource is not within ``bucket``, or None."""
    rel = resource
    if resource.startswith("acs:"):
        parts = resource.split(":", 4)
        if len(parts) != 5 or parts[1] != "oss":
            return f"{resource!r}: a full ARN must be acs:oss:*:<account>:{bucket}[/KEY-PATTERN]"
        rel = parts[4]
    if rel != bucket and not rel.startswith(bucket + "/"):
        return (
            f"{resource!r} is not in bucket {bucket!r} (a bucket policy governs only its own "
            f"bucket: write {bucket} or {bucket}/KEY-PATTERN)"
        )
    return None


def bucket_problems(data: dict[str, Any], conditions_problems: Any) -> list[Problem]:
    """What the schema cannot say about ``buckets:``: retention and versioning exclude each
    other, a rule names real targets, resources stay in their bucket, ``role:`` principals
    need ``defaults.account``."""
    problems: list[Problem] = []
    account = (data.get("defaults") or {}).get("account", "*")
    for name, bucket in (data.get("buckets") or {}).items():
        base: tuple[Any, ...] = ("buckets", name)
        if bucket.get("retention_days") is not None and bucket.get("versioning") in (
            "enabled",
            "suspended",
        ):
            problems.append(
                Problem(
                    base + ("retention_days",),
                    "retention_days (a WORM retention policy) and versioning exclude each "
                    "other; choose one (versioning: off, or no retention_days)",
                )
            )
        for i, rule in enumerate(bucket.get("replication") or []):
            if rule["target"] == name:
                problems.append(
                    Problem(
                        base + ("replication", i, "target"), "a bucket cannot replicate to itself"
                    )
                )
        rule_lists = [("overwrite_protection", "principals")]
        statements = bucket.get("policy") or []
        for kind, key in rule_lists:
            for i, rule in enumerate(bucket.get(kind) or []):
                for j, principal in enumerate(rule.get(key) or []):
                    if principal.startswith("role:") and account == "*":
                        problems.append(
                            Problem(
                                base + (kind, i, key, j),
                                f"{principal}: a role principal needs defaults.account (the "
                                "owner's 16-digit UID) to form arn:sts::<account>:assumed-role/...",
                            )
                        )
        for i, st in enumerate(statements):
            where = base + ("policy", i)
            conditions_problems(st.get("conditions"), where + ("conditions",))
            for j, principal in enumerate(st.get("principals") or []):
                if principal.startswith("role:") and account == "*":
                    problems.append(
                        Problem(
                            where + ("principals", j),
                            f"{principal}: a role principal needs defaults.account (the "
                            "owner's 16-digit UID) to form arn:sts::<account>:assumed-role/...",
                        )
                    )
            for j, resource in enumerate(st.get("resources") or []):
                msg = _resource_problem(name, resource)
                if msg:
                    problems.append(Problem(where + ("resources", j), msg))
    return problems


def user_template_names(directory: Path | None) -> set[str]:
    """Names of the user templates in ``directory`` (``<name>.json.j2``)."""
    if directory is None or not directory.is_dir():
        return set()
    return {p.name[: -len(".json.j2")] for p in directory.glob("*.json.j2")}


def project_root(directory: Path) -> Path:
    """The top of the git work tree that holds ``directory`` (the nearest folder with a
    ``.git`` entry; git refuses to track one, so a change cannot move it), else ``directory``."""
    d = directory.resolve()
    for candidate in (d, *d.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return d


def templates_folder_problem(base_dir: Path, entry: str, root: Path | None = None) -> str | None:
    """Why the spec's ``templates:`` entry may not be used, or None.

    The folder must be reached from the spec's folder without passing through a symlink
    and must be inside the project (``root``, default :func:`project_root`): a spec (in a
    pull request, say) cannot point its templates at ``/proc/self`` or outside the repository.
    """
    here = base_dir.resolve()
    top = (root or project_root(here)).resolve()
    current = Path(here.anchor) if os.path.isabs(entry) else here
    for part in PurePath(entry).parts:
        if part in (".", ""):
            continue
        if os.path.isabs(part):
            current = Path(part)
            continue
        current = current.parent if part == ".." else current / part
        if part != ".." and current.is_symlink():
            return (
                f"{entry!r} passes through the symlink {str(current)!r}; the templates folder "
                "must be a real directory"
            )
    inside = current.relative_to(top).parts if current == top or top in current.parents else None
    if inside is not None and any(p.lower() == ".git" for p in inside):
        return f"{entry!r} is inside a .git folder (git's own files, which may hold credentials)"
    if inside is None:
        return (
            f"{entry!r} is outside the project folder {str(top)!r} (the git work tree that "
            "holds the spec, or the spec's own folder)"
        )
    return None
