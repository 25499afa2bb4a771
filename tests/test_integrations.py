"""The script the GitHub Action runs, against a local stand-in for the GitHub API."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from permgen.integrations import github
from tests.conftest import ROOT
from tests.test_review import BASE, HEAD, _git


class _Api(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, str, Any]]] = []
    comments: ClassVar[list[dict[str, Any]]] = []

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n)) if n else None

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path, self.headers.get("Authorization")))
        self._reply(200, self.comments)

    def do_POST(self) -> None:
        body = self._body()
        self.calls.append(("POST", self.path, body))
        self.comments.append({"id": 7, "body": body["body"]})
        self._reply(201, {"id": 7})

    def do_PATCH(self) -> None:
        body = self._body()
        self.calls.append(("PATCH", self.path, body))
        self._reply(200, {"id": 7})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Any:
    _Api.calls = []
    _Api.comments = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    # polling for shutdown every 10 ms, not socketserver's 0.5 s, which teardown waited out
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _env(repo: Path, api: str, tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PERMGEN_SPEC": str(repo / "roles.yaml"),
        "PERMGEN_BASE": "main",
        "PERMGEN_FAIL_ON_RISK": "destructive",
        "PERMGEN_COMMENT": "true",
        "PERMGEN_PR_NUMBER": "12",
        "GITHUB_REPOSITORY": "acme/infra",
        "GITHUB_API_URL": api,
        "GITHUB_TOKEN": "ghs_test_token_value",
        "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
        "GITHUB_OUTPUT": str(tmp / "output.txt"),
    }


def test_the_action_script_reviews_comments_and_gates(
    tmp_path: Path, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.invalid")
    _git(repo, "config", "user.name", "t")
    (repo / "roles.yaml").write_text(BASE)
    _git(repo, "add", "roles.yaml")
    _git(repo, "commit", "-q", "-m", "base")
    (repo / "roles.yaml").write_text(HEAD)
    env = _env(repo, api, tmp_path)
    code = github.main(env)
    assert code == 3  # the writer gained DeleteObject: destructive
    summary = (tmp_path / "summary.md").read_text()
    assert "### permgen review" in summary and "`oss:DeleteObject`" in summary
    assert (tmp_path / "output.txt").read_text() == "exit-code=3\n"
    methods = [c[0] for c in _Api.calls]
    assert methods == ["GET", "POST"]
    assert _Api.calls[0][2] == "Bearer ghs_test_token_value"
    assert _Api.calls[1][1] == "/repos/acme/infra/issues/12/comments"
    assert _Api.calls[1][2]["body"].startswith(github.MARKER)
    # a second run updates the same comment instead of adding one
    assert github.main(env) == 3
    assert [c[0] for c in _Api.calls][2:] == ["GET", "PATCH"]
    assert _Api.calls[3][1] == "/repos/acme/infra/issues/comments/7"
    assert "ghs_test_token_value" not in capsys.readouterr().out


def test_the_action_script_needs_a_spec() -> None:
    with pytest.raises(SystemExit, match="spec"):
        github.review_argv({})


def test_review_argv() -> None:
    argv = github.review_argv(
        {
            "PERMGEN_SPEC": "r.yaml",
            "PERMGEN_BASE": "abc",
            "PERMGEN_FAIL_ON_RISK": "exposure",
            "PERMGEN_FAIL_ON_NEW_ACCESS": "true",
        }
    )
    assert argv[2:] == [
        "permgen",
        "review",
        "r.yaml",
        "--format",
        "markdown",
        "--base",
        "abc",
        "--fail-on-risk",
        "exposure",
        "--fail-on-new-access",
    ]
