"""Reading policy documents for commands: files, ``-`` for stdin, JSON arrays of policies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from permgen.errors import InputError, PolicyParseError
from permgen.policy.model import Policy, loads_lenient, parse_policy

if TYPE_CHECKING:
    from permgen.semantics.bucket_policy import BucketPolicy


def read_policies(source: str) -> list[Policy]:
    """One policy file (or ``-``). A JSON array holds several policies (a principal's set);
    an object ``{"name": policy, ...}`` (as ``permgen compile`` prints) holds named ones."""
    if source == "-":
        text = sys.stdin.read()
        label = "<stdin>"
    else:
        try:
            text = Path(source).read_text("utf-8")
        except FileNotFoundError:
            raise InputError(f"{source}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{source}: cannot read: {exc}") from None
        label = source
    doc = loads_lenient(text, source=label)
    if isinstance(doc, list):
        return [parse_policy(d, source=f"{label}[{i}]") for i, d in enumerate(doc)]
    if isinstance(doc, dict) and "Statement" not in doc and "Version" not in doc and doc:
        out = []
        for name, d in doc.items():
            policy = parse_policy(d, source=f"{label}#{name}") if isinstance(d, dict) else None
            if policy is None:
                raise PolicyParseError("expected a policy object", source=label, path=str(name))
            out.append(Policy(policy.statements, name=f"{label}#{name}"))
        return out
    policy = parse_policy(doc, source=label)
    return [Policy(policy.statements, name=label)]


def read_bucket_policy(source: str) -> BucketPolicy | None:
    """The file as a bucket policy when some statement has a ``Principal``; None when it is
    not one (an identity policy, an array, a ``{name: policy}`` object). ``-`` is never read
    here (standard input can be read once: it is an identity policy)."""
    from permgen.semantics.bucket_policy import parse_bucket_policy

    if source == "-":
        return None
    try:
        text = Path(source).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # read_policies reports it
    doc = loads_lenient(text, source=source)
    if not isinstance(doc, dict):
        return None
    raw = next((v for k, v in doc.items() if str(k).lower() == "statement"), None)
    raw = [raw] if isinstance(raw, dict) else raw
    if not isinstance(raw, list) or not any(
        isinstance(s, dict) and any(str(k).lower() == "principal" for k in s) for s in raw
    ):
        return None
    return parse_bucket_policy(doc, source=source)


__all__ = ["read_bucket_policy", "read_policies"]
