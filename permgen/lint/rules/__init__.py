"""The rule catalog, by id family. Every rule is registered explicitly (``register``) and
listed in :data:`RULES`, in id order.

Ids are stable and never reused: ``PG0xx`` input problems (:mod:`.inputs`), ``PG1xx``
policy rules (:mod:`.statements`), ``PG2xx`` semantic rules (:mod:`.semantic`, which need
:mod:`permgen.semantics`), ``PG3xx`` bucket-policy rules (:mod:`.bucket`).
"""

from __future__ import annotations

from permgen.lint.core import Rule
from permgen.lint.rules import bucket, inputs, semantic, statements
from permgen.lint.rules.common import RULES_BY_ID

_FAMILIES = (inputs, statements, semantic, bucket)  # importing them registers their rules

RULES: tuple[Rule, ...] = tuple(sorted(RULES_BY_ID.values(), key=lambda r: r.id))


def rule_by_id(rule_id: str) -> Rule:
    return RULES_BY_ID[rule_id]


__all__ = ["RULES", "rule_by_id"]
