"""PG0xx: problems with the input itself (unreadable, crashed, misspelled Effect)."""

from __future__ import annotations

from collections.abc import Iterator

from permgen.lint.core import Hit, LintContext, Rule
from permgen.lint.rules.common import (
    D1,
    register,
)
from permgen.policy.model import ALLOW, DENY


# PG001 and PG002 are produced by the lint engine itself: their checks yield nothing.
def _none(ctx: LintContext) -> Iterator[Hit]:
    return iter(())


INVALID = register(
    Rule(
        id="PG001",
        name="invalid-policy",
        severity="error",
        summary="The input is not valid JSON or not valid RAM policy grammar.",
        description=(
            "RAM rejects a document that is not valid JSON or that breaks the policy grammar "
            '(Version "1", Statement list, Effect, exactly one of Action/NotAction and of '
            "Resource/NotResource, documented condition operators, no Principal in identity "
            "policies). permgen parses leniently where Alibaba's own examples are lenient "
            "(trailing commas). A spec that does not compile is reported here too."
        ),
        reference=D1,
        example='{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject"}]}',
        passes='{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}]}',
        check=_none,
    )
)
CRASHED = register(
    Rule(
        id="PG002",
        name="rule-failed",
        severity="error",
        summary="A lint rule failed on this input (a bug in permgen; the other rules still ran).",
        description="Reported instead of a traceback, so one broken rule never hides the others.",
        reference="CONTRIBUTING.md",
        example="",
        check=_none,
    )
)


def _raw_statements(document: object) -> list[object]:
    """The statements of a decoded policy document as written (element names in any case)."""
    if not isinstance(document, dict):
        return []
    raw = next((v for k, v in document.items() if k.lower() == "statement"), None)
    return [raw] if isinstance(raw, dict) else raw if isinstance(raw, list) else []


def _check_effect_spelling(ctx: LintContext) -> Iterator[Hit]:
    for i, raw in enumerate(_raw_statements(ctx.document)):
        if not isinstance(raw, dict):
            continue
        for key, value in raw.items():
            if key.lower() == "effect" and value not in (ALLOW, DENY) and isinstance(value, str):
                fix = ALLOW if value.lower() == "allow" else DENY
                yield (
                    f"Statement[{i}].Effect",
                    f'Effect must be exactly "Allow" or "Deny", not {value!r}; write "{fix}"',
                )


EFFECT_SPELLING = register(
    Rule(
        id="PG003",
        name="effect-spelling",
        severity="error",
        summary='An Effect spelled other than exactly "Allow" or "Deny".',
        description=(
            'RAM\'s grammar is `"Effect" : ("Allow" | "Deny")`; whether it accepts "allow" or '
            '"DENY" is not documented. permgen reads such a statement as Allow or Deny (so its '
            "other findings still apply), but RAM may refuse the document or read it otherwise."
        ),
        reference=D1,
        example='{"Effect": "allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}',
        passes='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}',
        check=_check_effect_spelling,
    )
)
