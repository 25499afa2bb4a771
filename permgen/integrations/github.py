"""What the GitHub Action (``action.yml``) runs: review, job summary, pull request comment.

Reads its inputs from the environment (``PERMGEN_SPEC``, ``PERMGEN_BASE``,
``PERMGEN_FAIL_ON_RISK``, ``PERMGEN_FAIL_ON_NEW_ACCESS``, ``PERMGEN_COMMENT``,
``PERMGEN_PR_NUMBER``) and GitHub's (``GITHUB_STEP_SUMMARY``, ``GITHUB_OUTPUT``,
``GITHUB_REPOSITORY``, ``GITHUB_API_URL``, ``GITHUB_TOKEN``). Runs ``permgen review`` in
markdown, appends the report to the job summary, creates or updates one pull request comment
(found again by a hidden marker, so a re-run edits it rather than adding another), and exits
with review's exit code so the check fails when a gate does.

The token is sent only to ``GITHUB_API_URL`` and never printed. What is posted is review's
output, which comes from the compiled policies and the spec (user templates are confined to
their folder, see ``permgen.spec.template_guard``); as a second line of defence, the value of every
secret-looking environment variable (``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*KEY*``)
is replaced with ``***`` before anything is written, printed or posted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

MARKER = "<!-- permgen-review -->"

_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|KEY", re.IGNORECASE)
#: Values shorter than this are not redacted (they would match ordinary words).
_MIN_SECRET = 8


def redact(text: str, env: Mapping[str, str]) -> str:
    """``text`` with the value of every secret-looking environment variable replaced."""
    secrets = sorted(
        {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v.strip()) >= _MIN_SECRET},
        key=len,
        reverse=True,
    )
    for value in secrets:
        text = text.replace(value, "***")
    return text


def review_argv(env: Mapping[str, str]) -> list[str]:
    spec = env.get("PERMGEN_SPEC", "").strip()
    if not spec:
        raise SystemExit("permgen: error: the action needs the 'spec' input")
    argv = [sys.executable, "-m", "permgen", "review", spec, "--format", "markdown"]
    base = env.get("PERMGEN_BASE", "").strip()
    if base:
        argv += ["--base", base]
    risks = env.get("PERMGEN_FAIL_ON_RISK", "").strip()
    if risks:
        argv += ["--fail-on-risk", risks]
    if env.get("PERMGEN_FAIL_ON_NEW_ACCESS", "").strip().lower() == "true":
        argv.append("--fail-on-new-access")
    return argv


def _api(method: str, url: str, token: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Accept", "application/vnd.github+json")
    req.add_header("X-GitHub-Api-Version", "2022-11-28")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    return json.loads(text) if text else None


def upsert_comment(env: Mapping[str, str], markdown: str) -> str:
    """Create or update the review comment; returns ``created`` or ``updated``."""
    api = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    repo = env["GITHUB_REPOSITORY"]
    number = env["PERMGEN_PR_NUMBER"]
    token = env["GITHUB_TOKEN"]
    body = f"{MARKER}\n{markdown}"
    comments = _api("GET", f"{api}/repos/{repo}/issues/{number}/comments?per_page=100", token)
    for comment in comments or []:
        if MARKER in (comment.get("body") or ""):
            _api(
                "PATCH",
                f"{api}/repos/{repo}/issues/comments/{comment['id']}",
                token,
                {"body": body},
            )
            return "updated"
    _api("POST", f"{api}/repos/{repo}/issues/{number}/comments", token, {"body": body})
    return "created"


def main(env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    proc = subprocess.run(review_argv(env), capture_output=True, text=True, check=False)
    stderr = redact(proc.stderr, env)
    sys.stderr.write(stderr)
    markdown = redact(proc.stdout, env)
    if proc.returncode == 2 or not markdown.strip():
        markdown = f"**permgen review could not run** (exit {proc.returncode})\n\n```\n{stderr.strip()}\n```\n"
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
    output = env.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as fh:
            fh.write(f"exit-code={proc.returncode}\n")
    wants_comment = env.get("PERMGEN_COMMENT", "true").strip().lower() == "true"
    if (
        wants_comment
        and env.get("PERMGEN_PR_NUMBER")
        and env.get("GITHUB_TOKEN")
        and env.get("GITHUB_REPOSITORY")
    ):
        try:
            outcome = upsert_comment(env, markdown)
            sys.stderr.write(f"permgen: pull request comment {outcome}\n")
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            sys.stderr.write(f"permgen: warning: could not post the pull request comment: {exc}\n")
    print(markdown)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
