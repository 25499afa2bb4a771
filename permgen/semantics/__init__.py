"""The semantic core: deciding requests like RAM, and the exact diff of two policy sets."""

from permgen.semantics.conditions import MissingKey
from permgen.semantics.diff import RISK_ORDER, AccessItem, DiffResult, diff_policies
from permgen.semantics.evaluate import (
    Decision,
    Evaluator,
    Request,
    StatementRef,
    TokenEvaluator,
    explain,
)

__all__ = [
    "RISK_ORDER",
    "AccessItem",
    "Decision",
    "DiffResult",
    "Evaluator",
    "MissingKey",
    "Request",
    "StatementRef",
    "TokenEvaluator",
    "diff_policies",
    "explain",
]
