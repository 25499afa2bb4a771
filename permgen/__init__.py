"""permgen: least-privilege RAM policies, semantic diffs and short-lived STS credentials
for Alibaba Cloud OSS.

The public API is re-exported here lazily, so importing :mod:`permgen` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
