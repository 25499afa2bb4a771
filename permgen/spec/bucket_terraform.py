"""A ``buckets:`` entry as Terraform for the alicloud provider (``compile --format terraform``).

One text per bucket, written as ``buckets/<bucket>.tf``: the bucket policy
(``alicloud_oss_bucket_policy``), versioning (``alicloud_oss_bucket_versioning``), the
retention policy (``alicloud_oss_bucket_worm``, created locked), overwrite protection
(``alicloud_oss_bucket_overwrite_config``) and one ``alicloud_oss_bucket_replication`` per
replication rule. What the provider cannot express, or what only a weakening change could
express, is an HCL comment saying so (docs/commands/compile.md, docs/unconfirmed.md).

Safety, as for ``apply``: every resource has ``lifecycle { prevent_destroy = true }``, so a
plan that would delete or replace a protection fails instead; versioning is written as
``Suspended`` only when the spec says ``suspended``; removing protections (an empty list, or
``versioning: off``) is never written.

Principals: ``account:UID``, ``role:NAME`` and ``anonymous`` compile as for the JSON policy.
A ``user:NAME`` needs the user's UID, which only the account knows: it becomes a
``data "alicloud_ram_users"`` lookup of exactly that name with a postcondition that exactly
one user matched, and the policy names ``users[0].id`` (the UserId). A missing user fails
the Terraform plan; it never becomes a different principal.

Labels: Terraform identifiers may contain hyphens, so a resource's label is the bucket's
name itself (``_`` in front when it starts with a digit). Bucket names have no ``_``, so the
labels of two buckets never collide (``logs-raw_to_logs-dr``, ``logs-raw_user_analytics-bot``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from permgen.semantics.bucket_policy import BucketPolicy
from permgen.spec.compile import USER_MARKER, _hcl_string, bucket_principal
from permgen.spec.types import BucketRule, BucketSpec

PREVENT_DESTROY = "  lifecycle {\n    prevent_destroy = true\n  }\n"


@dataclass(frozen=True)
class _Expr:
    """An HCL expression written as is (a reference), not as a string."""

    text: str


def bucket_label(bucket: str) -> str:
    """The Terraform label of a bucket: its name, with ``_`` in front of a leading digit
    (a label must start with a letter or ``_``). Injective: bucket names have no ``_``."""
    return f"_{bucket}" if bucket[:1].isdigit() else bucket


def _name_part(name: str) -> str:
    """A RAM user or bucket name as part of a label: ``.`` and ``@`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _comment(text: str, width: int = 92) -> str:
    """``text`` as ``#`` comment lines. The text holds no newline: spec values in it are
    JSON-quoted (``_q``), so a value cannot end the comment and become HCL."""
    words = text.split(" ")
    lines: list[str] = []
    line = "#"
    for word in words:
        if len(line) + 1 + len(word) > width and line != "#":
            lines.append(line)
            line = "#"
        line += " " + word
    lines.append(line)
    return "\n".join(lines) + "\n"


def _q(value: str) -> str:
    """A spec value quoted for a comment: ASCII JSON, so no newline or control character."""
    return json.dumps(value, ensure_ascii=True)


def _attrs(pairs: Sequence[tuple[str, str]], indent: str = "  ") -> str:
    """Attribute lines with ``=`` aligned as ``terraform fmt`` aligns a run of them."""
    width = max(len(k) for k, _ in pairs)
    return "".join(f"{indent}{k.ljust(width)} = {v}\n" for k, v in pairs)


def _hcl_value(value: Any, level: int) -> str:
    """JSON-shaped HCL for ``jsonencode``, laid out as ``terraform fmt`` keeps it (the layout
    of role files): two spaces a level, `` : `` between keys and values, strings escaped so
    ``${`` and ``%{`` never interpolate; an :class:`_Expr` is written as is."""
    pad = "  " * level
    if isinstance(value, _Expr):
        return value.text
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}  {_hcl_string(k)} : {_hcl_value(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [f"{pad}  {_hcl_value(v, level + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    if isinstance(value, str):
        return _hcl_string(value)
    return json.dumps(value)


def _string_list(values: Sequence[str | _Expr]) -> str:
    return "[" + ", ".join(v.text if isinstance(v, _Expr) else _hcl_string(v) for v in values) + "]"


def _regex_exact(name: str) -> str:
    """An RE2 pattern matching exactly ``name``. RAM user names are letters, digits and
    ``._@-`` (the schema), of which only ``.`` is special to RE2; every RE2 metacharacter is
    escaped all the same."""
    return "^" + re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", name) + "$"


class _Users:
    """The ``data "alicloud_ram_users"`` lookups of one bucket's ``user:NAME`` principals."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.labels: dict[str, str] = {}

    def ref(self, name: str) -> _Expr:
        label = self.labels.get(name)
        if label is None:
            base = f"{bucket_label(self.bucket)}_user_{_name_part(name)}"
            label, n = base, 2
            while label in self.labels.values():
                label, n = f"{base}_{n}", n + 1
            self.labels[name] = label
        return _Expr(f"data.alicloud_ram_users.{label}.users[0].id")

    def blocks(self) -> list[str]:
        out = []
        for name, label in self.labels.items():
            message = (
                f"bucket {self.bucket}: user:{name} of the spec is not one RAM user of this "
                "account (its name is matched exactly); Terraform stops rather than write the "
                "bucket's policy or overwrite rules without that user's UID"
            )
            out.append(
                f'data "alicloud_ram_users" "{label}" {{\n'
                f"  name_regex = {_hcl_string(_regex_exact(name))}\n\n"
                f"  lifecycle {{\n    postcondition {{\n"
                f"      condition     = length(self.users) == 1\n"
                f"      error_message = {_hcl_string(message)}\n"
                f"    }}\n  }}\n}}\n"
            )
        return out


def _principal(spec_principal: str, account: str, users: _Users) -> str | _Expr:
    compiled = bucket_principal(spec_principal, account)
    if compiled.startswith(USER_MARKER):
        return users.ref(compiled[len(USER_MARKER) :])
    return compiled


def _import(address: str, ident: str) -> str:
    return f"import {{\n  to = {address}\n  id = {_hcl_string(ident)}\n}}\n"


def _versioning(b: BucketSpec, label: str, imports: list[str]) -> list[str]:
    if b.versioning is None:
        return []
    if b.versioning == "off":
        return [
            _comment(
                "versioning: off is not expressed. The provider's alicloud_oss_bucket_versioning "
                "takes only Enabled or Suspended and cannot keep a bucket never-versioned; "
                "Terraform leaves versioning as it is (permgen plan reports it when it is on)."
            )
        ]
    status = "Enabled" if b.versioning == "enabled" else "Suspended"
    imports.append(_import(f"alicloud_oss_bucket_versioning.{label}", b.name))
    return [
        f'resource "alicloud_oss_bucket_versioning" "{label}" {{\n'
        + _attrs([("bucket", _hcl_string(b.name)), ("status", _hcl_string(status))])
        + "\n"
        + PREVENT_DESTROY
        + "}\n"
    ]


def _retention(b: BucketSpec, label: str, import_existing: bool) -> list[str]:
    if b.retention_days is None:
        return []
    out = []
    if import_existing:
        out.append(
            _comment(
                "No import block for the retention policy: its import id is BUCKET:WORM_ID and "
                "the WORM id is known only to the account. To adopt an existing one: terraform "
                f"import alicloud_oss_bucket_worm.{label} {b.name}:<WormId of GetBucketWorm>."
            )
        )
    out.append(
        f'resource "alicloud_oss_bucket_worm" "{label}" {{\n'
        + _attrs(
            [
                ("bucket", _hcl_string(b.name)),
                ("retention_period_in_days", str(b.retention_days)),
                ("status", '"Locked"'),
            ]
        )
        + "\n"
        + PREVENT_DESTROY
        + "}\n"
    )
    return out


def _rule_block(
    rule_id: str, r: BucketRule, principals: Sequence[str | _Expr], indent: str = "  "
) -> str:
    pairs = [("id", _hcl_string(rule_id)), ("action", '"forbid"')]
    if r.prefix:
        pairs.append(("prefix", _hcl_string(r.prefix)))
    if r.suffix:
        pairs.append(("suffix", _hcl_string(r.suffix)))
    text = f"{indent}rule {{\n" + _attrs(pairs, indent + "  ")
    if principals:
        text += (
            f"{indent}  principals {{\n"
            f"{indent}    principal = {_string_list(principals)}\n"
            f"{indent}  }}\n"
        )
    return text + f"{indent}}}\n"


def _overwrite(
    b: BucketSpec, label: str, account: str, users: _Users, imports: list[str]
) -> list[str]:
    if b.overwrite_protection is None:
        return []
    if not b.overwrite_protection:
        return [
            _comment(
                "overwrite_protection: [] (no rules) is not expressed: removing overwrite "
                "protection weakens the bucket; permgen apply does it only with "
                f"--allow-remove-overwrite-protection {b.name}."
            )
        ]
    rules = [
        _rule_block(f"permgen-{i}", r, [_principal(p, account, users) for p in r.principals])
        for i, r in enumerate(b.overwrite_protection)
    ]
    imports.append(_import(f"alicloud_oss_bucket_overwrite_config.{label}", b.name))
    return [
        f'resource "alicloud_oss_bucket_overwrite_config" "{label}" {{\n'
        f"  bucket = {_hcl_string(b.name)}\n\n" + "\n".join(rules) + "\n" + PREVENT_DESTROY + "}\n"
    ]


def _replication(b: BucketSpec, label: str, import_existing: bool) -> list[str]:
    if b.replication is None:
        return []
    if not b.replication:
        return [
            _comment(
                "replication: [] (no rules) is not expressed: removing replication weakens the "
                f"bucket; permgen apply does it only with --allow-remove-replication {b.name}."
            )
        ]
    out = [
        _comment(
            "Replication: one resource per rule of the spec (action ALL, as permgen apply "
            "writes it). Rules the bucket has beyond these are left alone; permgen apply "
            f"removes them only with --allow-remove-replication {b.name}."
        )
    ]
    if import_existing:
        out.append(
            _comment(
                "No import blocks for replication rules: the import id is BUCKET:RULE_ID and "
                "rule ids are known only to the account (GetBucketReplication)."
            )
        )
    region = f"{label}_region"
    needs_region = False
    used: set[str] = set()
    for r in b.replication:
        base = f"{label}_to_{r.target}"
        rlabel, n = base, 2
        while rlabel in used:
            rlabel, n = f"{base}_{n}", n + 1
        used.add(rlabel)
        if r.location:
            location = _hcl_string(r.location)
        else:
            needs_region = True
            location = f'"oss-${{data.alicloud_regions.{region}.ids[0]}}"'
        text = (
            f'resource "alicloud_oss_bucket_replication" "{rlabel}" {{\n'
            + _attrs([("bucket", _hcl_string(b.name)), ("action", '"ALL"')])
            + "\n  destination {\n"
            + _attrs([("bucket", _hcl_string(r.target)), ("location", location)], "    ")
            + "  }\n"
        )
        if r.prefix:
            text += f"\n  prefix_set {{\n    prefixes = [{_hcl_string(r.prefix)}]\n  }}\n"
        out.append(text + "\n" + PREVENT_DESTROY + "}\n")
    if needs_region:
        out.insert(
            1,
            _comment(
                "A rule without location: replicates to the provider's region, as permgen apply "
                "uses its --region."
            )
            + f'data "alicloud_regions" "{region}" {{\n  current = true\n}}\n',
        )
    return out


def _lifecycle(b: BucketSpec) -> list[str]:
    if b.lifecycle is None:
        return []
    rules = "; ".join(
        f"expire objects under {_q(r.prefix)} after {r.expire_days} days" for r in b.lifecycle
    )
    what = f"lifecycle rules ({rules})" if b.lifecycle else "lifecycle: [] (no rules)"
    return [
        _comment(
            f"Not expressed: {what}. The official alicloud provider sets lifecycle rules only "
            "inside alicloud_oss_bucket, a resource that creates and deletes the bucket itself, "
            "which permgen never manages; it has no standalone lifecycle resource "
            "(docs/unconfirmed.md). permgen apply writes these rules."
        )
    ]


def _policy(
    b: BucketSpec,
    policy: BucketPolicy | None,
    label: str,
    users: _Users,
    imports: list[str],
) -> list[str]:
    if b.policy is None:
        return []
    if not b.policy or policy is None:
        return [
            _comment(
                "policy: [] (no bucket policy) is not expressed: deleting a bucket policy can "
                "weaken the bucket (its Deny statements go); permgen apply does it only with "
                f"--allow-delete-bucket-policy {b.name}."
            )
        ]
    doc = policy.to_json()
    for st in doc["Statement"]:
        st["Principal"] = [
            users.ref(p[len(USER_MARKER) :]) if p.startswith(USER_MARKER) else p
            for p in st["Principal"]
        ]
    imports.append(_import(f"alicloud_oss_bucket_policy.{label}", b.name))
    return [
        f'resource "alicloud_oss_bucket_policy" "{label}" {{\n'
        f"  bucket = {_hcl_string(b.name)}\n"
        f"  policy = jsonencode({_hcl_value(doc, 1)})\n\n" + PREVENT_DESTROY + "}\n"
    ]


def bucket_terraform_text(
    bucket: BucketSpec,
    policy: BucketPolicy | None,
    account: str,
    *,
    import_existing: bool = False,
) -> str:
    """The Terraform for one ``buckets:`` entry (``policy``: its compiled bucket policy, as
    :func:`permgen.spec.compile.compile_bucket_policy` gives it; ``account``: the owner's
    UID, ``defaults.account``). With ``import_existing``, ``import`` blocks (Terraform 1.5+)
    for the resources whose import id is the bucket's name."""
    label = bucket_label(bucket.name)
    users = _Users(bucket.name)
    imports: list[str] = []
    header = _comment(
        f"Bucket {bucket.name}: what the spec's buckets: entry declares. permgen compile writes "
        "this file; manage the bucket with Terraform or with permgen apply, not both."
    )
    blocks = (
        _versioning(bucket, label, imports)
        + _retention(bucket, label, import_existing)
        + _overwrite(bucket, label, account, users, imports)
        + _replication(bucket, label, import_existing)
        + _lifecycle(bucket)
        + _policy(bucket, policy, label, users, imports)
    )
    blocks = users.blocks() + blocks
    if import_existing:
        blocks += imports
    return header + ("\n" + "\n".join(blocks) if blocks else "")


def buckets_terraform(
    buckets: Mapping[str, BucketSpec],
    policies: Mapping[str, BucketPolicy | None],
    account: str,
    *,
    import_existing: bool = False,
) -> dict[str, str]:
    """``buckets/<bucket>.tf`` -> its text, for every ``buckets:`` entry."""
    return {
        f"buckets/{name}.tf": bucket_terraform_text(
            b, policies.get(name), account, import_existing=import_existing
        )
        for name, b in buckets.items()
    }


__all__ = ["bucket_label", "bucket_terraform_text", "buckets_terraform"]
