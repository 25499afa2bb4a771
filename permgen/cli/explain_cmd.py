"""``permgen explain``: decide one request against policies, and say which statements decided."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from permgen.cli._common import batch, handle_errors, missing_key_option
from permgen.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from permgen.policy.model import Policy
    from permgen.semantics import Decision, Request
    from permgen.semantics.evaluate import Explanation


@click.command("explain")
@click.argument("policies", nargs=-1, required=False, metavar="POLICY...")
@click.option("--action", required=True, help="The action, e.g. oss:GetObject.")
@click.option(
    "--resource",
    required=True,
    help="The resource ARN, e.g. acs:oss:*:1234567890123456:bucket/key.",
)
@click.option(
    "--context",
    "context",
    multiple=True,
    metavar="KEY=VALUE",
    help="A condition key of the request, e.g. acs:SourceIp=203.0.113.9 (repeatable).",
)
@click.option(
    "--session-policy",
    "session",
    multiple=True,
    metavar="FILE",
    help="Decide as an STS token: this session policy AND the POLICY files.",
)
@click.option(
    "--bucket-policy",
    "bucket_policy",
    metavar="FILE",
    help="Decide with this bucket policy too: a Deny in either side wins, else an Allow in "
    "either allows. Say who asks with --principal, --owner or --anonymous.",
)
@click.option(
    "--principal",
    "principal_ids",
    multiple=True,
    metavar="ID",
    help="With --bucket-policy: a name the caller has in a bucket policy's Principal: an "
    "account or RAM-user UID, arn:sts::UID:assumed-role/ROLE/SESSION, or user:NAME as "
    "compile writes it (repeatable).",
)
@click.option(
    "--owner",
    is_flag=True,
    help="With --bucket-policy: the caller is the bucket's owning account.",
)
@click.option(
    "--anonymous",
    is_flag=True,
    help="With --bucket-policy: an unsigned request (no identity policies).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--expect",
    type=click.Choice(["allow", "deny"]),
    help="Exit 3 unless the decision is this (deny = explicit or implicit) and does not "
    "hinge on a condition key the request does not give.",
)
@click.option(
    "--context-complete",
    is_flag=True,
    help="The request has no condition keys but those given with --context: --expect "
    "accepts an answer that holds because a key is absent.",
)
@missing_key_option
@handle_errors
@batch
def command(
    policies: tuple[str, ...],
    action: str,
    resource: str,
    context: tuple[str, ...],
    session: tuple[str, ...],
    bucket_policy: str | None,
    principal_ids: tuple[str, ...],
    owner: bool,
    anonymous: bool,
    fmt: str,
    expect: str | None,
    context_complete: bool,
    missing_key: str,
) -> int:
    """Decide one request against POLICY files (a principal's attached set).

    Prints allow, explicit_deny or implicit_deny and the statements that decided it, and
    which condition keys the request does not give could change the answer (and to what).
    --expect fails when the answer holds only because such a key is absent, unless
    --context-complete says the request really has no other keys.
    With --bucket-policy FILE: the decision of the caller's POLICY files and the bucket
    policy together (docs/semantics.md); --owner holds every permission on the identity
    side, --anonymous none.

    Exit codes: 0; 3 when --expect does not hold; 2 bad input (an unknown action, a
    resource that is not an ARN, an unreadable policy).
    """
    from permgen.cli._policies import read_policies
    from permgen.semantics import MissingKey, Request
    from permgen.semantics.evaluate import explain_request

    ctx: dict[str, str] = {}
    for pair in context:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--context {pair!r}: expected KEY=VALUE")
        ctx[key] = value
    _check_action(action)
    if bucket_policy is not None:
        return _explain_bucket(
            policies,
            action,
            resource,
            ctx,
            session,
            bucket_policy,
            principal_ids,
            owner=owner,
            anonymous=anonymous,
            fmt=fmt,
            expect=expect,
            missing_key=missing_key,
        )
    if principal_ids or owner or anonymous:
        raise UsageError("--principal, --owner and --anonymous need --bucket-policy")
    if not policies:
        raise UsageError("give at least one POLICY file (or --bucket-policy)")
    loaded = [p for src in policies for p in read_policies(src)]
    session_policies = [p for src in session for p in read_policies(src)] if session else None
    _check_resource(resource, [*loaded, *(session_policies or ())])
    request = Request(action, resource, ctx)
    result = explain_request(
        loaded, request, session=session_policies, missing_key=MissingKey(missing_key)
    )
    if fmt == "json":
        doc = explanation_json(result, request, context_complete=context_complete)
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(explanation_text(result, request, context_complete=context_complete), nl=False)
    decision = result.decision
    if expect is not None and (expect == "allow") != decision.allowed:
        click.echo(f"permgen: expected {expect}, got {decision.kind}", err=True)
        return int(ExitCode.CHECK_FAILED)
    flips = result.flips(expect == "allow") if expect is not None else ()
    if flips and not context_complete:
        alt = flips[0]
        click.echo(
            f"permgen: {expect} holds only because the request does not give "
            f"{', '.join(alt.context)}: with {_pairs(alt.context)} it is {alt.decision}; "
            "give the keys with --context, or --context-complete if the request has none",
            err=True,
        )
        return int(ExitCode.CHECK_FAILED)
    return int(ExitCode.OK)


def _explain_bucket(
    policies: tuple[str, ...],
    action: str,
    resource: str,
    ctx: dict[str, str],
    session: tuple[str, ...],
    bucket_file: str,
    principal_ids: tuple[str, ...],
    *,
    owner: bool,
    anonymous: bool,
    fmt: str,
    expect: str | None,
    missing_key: str,
) -> int:
    """``explain --bucket-policy``: the combined decision of identity and bucket policies."""
    from pathlib import Path

    from permgen.cli._policies import read_policies
    from permgen.errors import InputError
    from permgen.semantics import MissingKey, Request
    from permgen.semantics.bucket_policy import Caller, CombinedEvaluator, parse_bucket_policy

    if owner and anonymous:
        raise UsageError("--owner and --anonymous exclude each other")
    if anonymous and (policies or session or principal_ids):
        raise UsageError(
            "--anonymous: an unsigned request has no POLICY files, --session-policy or --principal"
        )
    if owner and (policies or session):
        raise UsageError("--owner: the bucket owner holds every permission; give no POLICY files")
    if not (owner or anonymous or principal_ids):
        raise UsageError(
            "--bucket-policy: say who asks with --principal ID, --owner or --anonymous"
        )
    try:
        raw = Path(bucket_file).read_bytes()
    except OSError as exc:
        raise InputError(f"{bucket_file}: cannot read ({exc.strerror})") from None
    bucket = parse_bucket_policy(raw, source=bucket_file)
    loaded = [p for src in policies for p in read_policies(src)]
    session_policies = [p for src in session for p in read_policies(src)] if session else None
    _check_resource(resource, loaded)
    caller = Caller(principal_ids, owner=owner, anonymous=anonymous)
    request = Request(action, resource, ctx)
    decision = CombinedEvaluator(
        caller, loaded, bucket, session=session_policies, missing_key=MissingKey(missing_key)
    ).decide(request)
    if fmt == "json":
        doc = decision.to_json()
        doc["request"] = request.to_json()
        doc["caller"] = {"ids": list(principal_ids), "owner": owner, "anonymous": anonymous}
        click.echo(json.dumps(doc, indent=2))
    else:
        who = (
            "the bucket owner"
            if owner
            else "an anonymous caller"
            if anonymous
            else ", ".join(principal_ids)
        )
        out = [f"{decision.kind}: {request.action} on {request.resource} by {who}"]
        ident = (
            "owner: every permission"
            if owner
            else "none (anonymous)"
            if anonymous
            else decision.identity.kind
        )
        out.append(f"  identity policies: {ident}")
        if not owner and not anonymous:
            out += _decision_lines(decision.identity, "    ")
        out.append(f"  bucket policy: {decision.bucket.kind}")
        out += _decision_lines(decision.bucket, "    ")
        click.echo("\n".join(out) + "\n", nl=False)
    if expect is not None and (expect == "allow") != decision.allowed:
        click.echo(f"permgen: expected {expect}, got {decision.kind}", err=True)
        return int(ExitCode.CHECK_FAILED)
    return int(ExitCode.OK)


def _pairs(context: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in context.items())


def _check_action(action: str) -> None:
    """An action of a service the catalog knows must be in the catalog (did-you-mean)."""
    import difflib

    from permgen.policy import catalog

    service, sep, name = action.partition(":")
    if not sep or not service or not name:
        raise UsageError(f"--action {action!r}: expected SERVICE:ACTION, e.g. oss:GetObject")
    if service.lower() not in catalog.known_services() or catalog.lookup(action):
        return
    names = {
        info.name.lower(): info.name
        for info in catalog.actions().values()
        if info.service == service.lower()
    }
    close = difflib.get_close_matches(action.lower(), names, n=1, cutoff=0.6)
    hint = f"; did you mean {names[close[0]]}?" if close else ""
    raise UsageError(f"--action {action!r}: unknown {service.lower()} action{hint}")


def _check_resource(resource: str, policies: Sequence[Policy]) -> None:
    """A request's resource is an ARN, acs:SERVICE:REGION:ACCOUNT:RELATIVE-ID."""
    parts = resource.split(":", 4)
    if len(parts) == 5 and parts[0] == "acs" and parts[1] and parts[4]:
        return
    path = resource.removeprefix("oss://").lstrip("/")
    if resource.startswith("acs:") or not path or ":" in path:
        raise UsageError(
            f"--resource {resource!r} is not a resource ARN: expected "
            "acs:SERVICE:REGION:ACCOUNT:RESOURCE, e.g. acs:oss:*:1234567890123456:bucket/key"
        )
    raise UsageError(
        f"--resource {resource!r} is not an ARN; use the ARN form: "
        f"acs:oss:*:{_account_of(policies)}:{path}"
    )


def _account_of(policies: Sequence[Policy]) -> str:
    """The one account the policies' OSS resources name, or a placeholder."""
    accounts = {
        parts[3]
        for p in policies
        for s in p.statements
        for r in s.resources
        if len(parts := r.split(":", 4)) == 5 and parts[1] == "oss"
        if parts[3] and "*" not in parts[3] and "?" not in parts[3]
    }
    return accounts.pop() if len(accounts) == 1 else "<account-id>"


def _decision_lines(decision: Decision, indent: str) -> list[str]:
    out = []
    for s in decision.statements:
        out.append(f"{indent}{s.effect} {s.policy} Statement[{s.index}]: {s.why}")
        out.append(f"{indent}  {json.dumps(s.statement.to_json(), separators=(',', ':'))}")
    if decision.kind == "implicit_deny" and not decision.statements:
        out.append(f"{indent}no statement allows it")
    return out


def explanation_text(result: Explanation, request: Request, *, context_complete: bool) -> str:
    """What ``permgen explain`` prints (text)."""
    d = result.decision
    out = [f"{d.kind}: {request.action} on {request.resource}"]
    if result.ceiling is not None and result.session is not None:
        for label, side in (
            ("ceiling (POLICY files)", result.ceiling),
            ("session policy", result.session),
        ):
            out.append(f"  {label}: {side.kind}")
            out += _decision_lines(side, "    ")
        if result.denied_by:
            names = {"ceiling": "the ceiling", "session": "the session policy"}
            out.append("  denied by: " + " and ".join(names[n] for n in result.denied_by))
    else:
        out += _decision_lines(d, "  ")
    if result.missing_keys:
        keys = ", ".join(result.missing_keys)
        if context_complete:
            out.append(
                f"  decided without {keys}: the request has no such keys (--context-complete)"
            )
        elif result.alternatives:
            out.append(f"  depends on condition keys the request does not give: {keys}")
            for alt in result.alternatives:
                out.append(f"    with {_pairs(alt.context)} the answer could be {alt.decision}")
        else:
            out.append(f"  giving {keys} does not change the answer (representative values tried)")
        if not result.exhaustive:
            out.append("  (the search for other answers stopped at its budget; there may be more)")
    return "\n".join(out) + "\n"


def explanation_json(
    result: Explanation, request: Request, *, context_complete: bool
) -> dict[str, Any]:
    """What ``permgen explain --format json`` prints (fields documented in docs/commands/explain.md)."""
    doc = result.decision.to_json()
    doc["request"] = request.to_json()
    doc["missing_keys"] = list(result.missing_keys)
    doc["alternatives"] = [a.to_json() for a in result.alternatives]
    doc["alternatives_exhaustive"] = result.exhaustive
    doc["context_complete"] = context_complete
    if result.ceiling is not None and result.session is not None:
        doc["ceiling"] = result.ceiling.to_json()
        doc["session"] = result.session.to_json()
        doc["denied_by"] = list(result.denied_by)
    return doc
