"""OSS bucket policies, and one decision for a principal's identity policies and a bucket's
policy together.

A bucket policy is a RAM policy whose statements also name a ``Principal``: a list of
strings (an account or RAM-user UID, ``"*"``, or a role session
``arn:sts::<uid>:assumed-role/<role>/<session>``); a single string is a one-element list and
an empty list means ``["*"]`` (ram-facts O1, O3). Principal entries compare with case; ``*``
and ``?`` in them are wildcards (docs/unconfirmed.md).

Who a statement applies to (O3, the "bucket owner" rules):

- a statement naming ``"*"`` **without** a Condition applies to everyone but the bucket owner
  (the owning account itself): anonymous callers, RAM users and roles included;
- a statement naming ``"*"`` **with** a Condition applies to everyone, the owner and
  anonymous callers included (so a Deny can lock the owner out);
- a statement naming UIDs or sessions applies to the callers it names.

The combined decision (:class:`CombinedEvaluator`): an explicit Deny in the identity policies
or in the applicable bucket-policy statements wins; otherwise an Allow in either allows;
otherwise the request is implicitly denied. The bucket owner (the account) holds every
permission on the identity side; an anonymous caller holds none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from permgen.errors import PolicyParseError
from permgen.policy.model import Policy, Statement, loads_lenient, parse_policy
from permgen.policy.wildcard import match
from permgen.semantics.conditions import MissingKey
from permgen.semantics.evaluate import (
    Decision,
    DecisionKind,
    Evaluator,
    Request,
    StatementRef,
    TokenEvaluator,
)

#: The largest bucket policy, in UTF-8 bytes (all of a bucket's policy: ram-facts 2.x, O3).
BUCKET_POLICY_LIMIT = 16 * 1024
_IP_KEY = "acs:sourceip"
_VPC_KEY = "acs:sourcevpc"


@dataclass(frozen=True)
class BucketStatement:
    """One bucket-policy statement: who it names, and the statement itself."""

    principals: tuple[str, ...]
    statement: Statement

    @property
    def everyone(self) -> bool:
        return "*" in self.principals


@dataclass(frozen=True)
class BucketPolicy:
    statements: tuple[BucketStatement, ...]
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        out = []
        for bs in self.statements:
            st = bs.statement.to_json()
            out.append({"Principal": list(bs.principals), **st})
        return {"Version": "1", "Statement": out}


@dataclass(frozen=True)
class Caller:
    """Who sends a request, as a bucket policy's Principal can name it.

    ``ids``: the strings a Principal entry may match (an account UID for the account, a
    RAM user's UID, a role session's ``arn:sts::<uid>:assumed-role/<role>/<session>``).
    ``owner``: the caller is the bucket's owning account. ``anonymous``: an unsigned request.
    """

    ids: tuple[str, ...] = ()
    owner: bool = False
    anonymous: bool = False

    @classmethod
    def anonymous_caller(cls) -> Caller:
        return cls((), owner=False, anonymous=True)


def parse_bucket_policy(text: str | bytes | Mapping[str, Any], *, source: str = "") -> BucketPolicy:
    """Parse a bucket policy; PolicyParseError names the JSON path of the first problem.

    Each statement is parsed as a RAM statement once its Principal is taken out, so the
    grammar of Effect, Action, Resource and Condition is exactly the identity side's."""
    src = source or None
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyParseError("not UTF-8 text", source=src) from None
    if isinstance(text, str) and len(text.encode()) > BUCKET_POLICY_LIMIT:
        raise PolicyParseError(f"the policy is over {BUCKET_POLICY_LIMIT} bytes", source=src)
    doc = loads_lenient(text, source=src) if isinstance(text, str) else text
    if not isinstance(doc, Mapping):
        raise PolicyParseError("a policy must be a JSON object", source=src)
    keys = {str(k).lower(): k for k in doc}
    raw = doc.get(keys.get("statement", "Statement"))
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        raise PolicyParseError("Statement must be a list of statement objects", source=src)
    principals: list[tuple[str, ...]] = []
    bare: list[dict[str, Any]] = []
    for i, st in enumerate(raw):
        if not isinstance(st, Mapping):
            raise PolicyParseError(
                "a statement must be a JSON object", source=src, path=f"Statement[{i}]"
            )
        rest = {k: v for k, v in st.items() if str(k).lower() != "principal"}
        if any(str(k).lower() == "notprincipal" for k in st):
            raise PolicyParseError(
                "NotPrincipal is not part of OSS bucket policies",
                source=src,
                path=f"Statement[{i}].NotPrincipal",
            )
        pkey = next((k for k in st if str(k).lower() == "principal"), None)
        if pkey is None:
            raise PolicyParseError(
                'missing "Principal" (a list of UIDs or "*")', source=src, path=f"Statement[{i}]"
            )
        value = st[pkey]
        if type(value) is str:
            names: tuple[str, ...] = (value,)
        elif type(value) is list and all(type(v) is str for v in value):
            names = tuple(value)
        else:
            raise PolicyParseError(
                "Principal must be a string or a list of strings",
                source=src,
                path=f"Statement[{i}].Principal",
            )
        principals.append(names or ("*",))  # an empty list means everyone (O1)
        bare.append(rest)
    version = doc.get(keys.get("version", "Version"), "1")
    parsed = parse_policy({"Version": version, "Statement": bare}, source=src)
    return BucketPolicy(
        tuple(BucketStatement(p, s) for p, s in zip(principals, parsed.statements, strict=True)),
        name=source,
    )


def bucket_policy_problems(policy: BucketPolicy) -> list[str]:
    """What OSS refuses in a bucket policy beyond the grammar: a statement whose condition
    tests ``acs:SourceIp`` must also test ``acs:SourceVpc`` (O3)."""
    out = []
    for i, bs in enumerate(policy.statements):
        keys = {c.key.lower() for c in bs.statement.conditions}
        if _IP_KEY in keys and _VPC_KEY not in keys:
            out.append(f"Statement[{i}]: acs:SourceVpc should be set if acs:SourceIp is set")
    return out


def applies_to(bs: BucketStatement, caller: Caller) -> bool:
    """Whether a bucket-policy statement applies to ``caller`` (the owner rules above). A
    statement that names the caller applies, whatever else it names."""
    if any(match(p, i) for p in bs.principals if p != "*" for i in caller.ids):
        return True
    if bs.everyone:
        return bool(bs.statement.conditions) or not caller.owner
    return False


def applicable(policy: BucketPolicy | None, caller: Caller) -> list[tuple[Statement, str, int]]:
    """The statements of ``policy`` that apply to ``caller``: (statement, name, index)."""
    if policy is None:
        return []
    name = policy.name or "bucket-policy"
    return [
        (bs.statement, name, i) for i, bs in enumerate(policy.statements) if applies_to(bs, caller)
    ]


@dataclass(frozen=True)
class CombinedDecision:
    """The decision, with each side's own: ``identity`` (the caller's RAM policies; for the
    owner an allow with no statements) and ``bucket`` (the applicable bucket statements)."""

    kind: DecisionKind
    identity: Decision
    bucket: Decision

    @property
    def allowed(self) -> bool:
        return self.kind == "allow"

    @property
    def statements(self) -> tuple[StatementRef, ...]:
        sides = (self.identity, self.bucket)
        return tuple(s for d in sides if d.kind == self.kind for s in d.statements)

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.kind,
            "identity": self.identity.to_json(),
            "bucket_policy": self.bucket.to_json(),
        }


def combine(identity: DecisionKind, bucket: DecisionKind) -> DecisionKind:
    """Deny in either wins; else Allow in either allows; else implicit deny."""
    if "explicit_deny" in (identity, bucket):
        return "explicit_deny"
    if "allow" in (identity, bucket):
        return "allow"
    return "implicit_deny"


class CombinedEvaluator:
    """One caller's identity policies and one bucket's policy, compiled for deciding requests.

    ``identity``: the caller's RAM policies (None for the owner, who may do anything, and for
    an anonymous caller, who has no identity policies); ``session``: an STS token's session
    policy, ANDed with ``identity`` as for :class:`TokenEvaluator`."""

    def __init__(
        self,
        caller: Caller,
        identity: Sequence[Policy] | None,
        bucket_policy: BucketPolicy | None,
        *,
        session: Sequence[Policy] | None = None,
        missing_key: MissingKey = MissingKey.NEGATED_TRUE,
    ) -> None:
        self.caller = caller
        self._identity: Evaluator | TokenEvaluator | None = None
        if not caller.owner and not caller.anonymous:
            self._identity = (
                TokenEvaluator(session, identity or (), missing_key=missing_key)
                if session is not None
                else Evaluator(identity or (), missing_key=missing_key)
            )
        self._bucket = Evaluator.from_statements(
            applicable(bucket_policy, caller), missing_key=missing_key
        )

    def identity_decision(self, request: Request) -> Decision:
        if self.caller.owner:
            return Decision("allow")
        if self._identity is None:
            return Decision("implicit_deny")
        return self._identity.decide(request)

    def decide(self, request: Request) -> CombinedDecision:
        ident = self.identity_decision(request)
        bucket = self._bucket.decide(request)
        return CombinedDecision(combine(ident.kind, bucket.kind), ident, bucket)

    def allows(self, request: Request) -> bool:
        return self.decide(request).allowed


__all__ = [
    "BUCKET_POLICY_LIMIT",
    "BucketPolicy",
    "BucketStatement",
    "Caller",
    "CombinedDecision",
    "CombinedEvaluator",
    "applicable",
    "applies_to",
    "bucket_policy_problems",
    "combine",
    "parse_bucket_policy",
]
