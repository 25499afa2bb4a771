"""The SARIF 2.1.0 envelope that lint and review fill with their rules and results."""

from __future__ import annotations

from typing import Any

from permgen import __version__

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"


def sarif_log(
    rules: list[dict[str, Any]], results: list[dict[str, Any]], *, information_uri: str
) -> dict[str, Any]:
    """One run of the ``permgen`` tool with these rules and results."""
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "permgen",
                        "version": __version__,
                        "informationUri": information_uri,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


__all__ = ["SCHEMA_URI", "sarif_log"]
