"""User templates are confined to their folder and rendered within bounds.

Every leak path a pull request could try (a symlinked template, a symlinked folder or
intermediate directory, ``..`` and absolute names in include/import/extends, hard links,
FIFOs, huge files) and every bound (time, output, value sizes, ranges, loops, calls) is
checked here; ``test_no_secret_reaches_any_output`` runs the real commands in subprocesses
with fake secrets in the environment and checks none of them ever appears anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permgen.errors import SpecError
from permgen.spec import template_guard as tg
from permgen.spec.templates import render
from tests.conftest import ROOT, run_cli
from tests.test_integrations import _Api, _env, api  # noqa: F401 (the local GitHub API)
from tests.test_review import BASE, _git

CONTEXT: dict[str, Any] = {
    "grants": [{"bucket": "b", "bucket_arn": "acs:oss:*:*:b", "object_arns": ["acs:oss:*:*:b/*"]}],
    "role": {"name": "r", "description": "", "template": "t"},
    "options": {},
    "all_object_arns": ["acs:oss:*:*:b/*"],
    "service_arn": "acs:oss:*:*:*",
    "account": "*",
    "values": {},
}

SECRET = "FAKE-SECRET-7f3a9c1e-do-not-leak"
GOOD = '{"Version": "1", "Statement": [{{ allow(["oss:GetObject"], grants[0].object_arns) }}]}'


def _render(folder: Path, name: str = "t") -> str:
    return render(name, CONTEXT, user_dir=folder, role="r")


def _refused(folder: Path, name: str = "t") -> str:
    with pytest.raises(SpecError) as info:
        _render(folder, name)
    message = str(info.value)
    assert SECRET not in message
    assert "role r" in message or "roles.r.template" in message
    return message


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """tmp/outside/secret.txt holds SECRET; tmp/tpl is the templates folder."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text(SECRET)
    (tmp_path / "outside" / "x.json.j2").write_text(SECRET)
    (tmp_path / "tpl").mkdir()
    return tmp_path / "tpl"


# --------------------------------------------------------------------------- confinement


def test_a_regular_template_renders(layout: Path) -> None:
    (layout / "t.json.j2").write_text(GOOD)
    (layout / "part").mkdir()
    (layout / "part" / "p.j2").write_text("{{ allow(['oss:GetObject'], ['acs:oss:*:*:b/*']) }}")
    assert "oss:GetObject" in _render(layout)
    (layout / "t.json.j2").write_text('{"Version": "1", "Statement": [{% include "part/p.j2" %}]}')
    assert "oss:GetObject" in _render(layout)


def test_a_symlink_to_proc_self_environ_is_refused(layout: Path) -> None:
    """The reported reproduction: a template including a symlink to the environment."""
    (layout / "leak.json.j2").symlink_to("/proc/self/environ")
    (layout / "t.json.j2").write_text(
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"], '
        '"Resource": ["acs:oss:*:*:b/{% include "leak.json.j2" %}"]}]}'
    )
    message = _refused(layout)
    assert "template 'leak.json.j2' is a symlink to outside the templates folder" in message
    assert "(role r)" in message
    (layout / "u.json.j2").symlink_to("/proc/self/environ")
    assert "template 'u.json.j2' is a symlink to outside" in _refused(layout, "u")


def test_symlinks_to_ordinary_files_are_refused_inside_or_out(layout: Path) -> None:
    (layout / "t.json.j2").symlink_to(layout.parent / "outside" / "secret.txt")
    assert "is a symlink to outside the templates folder" in _refused(layout)
    (layout / "t.json.j2").unlink()
    (layout / "real.json.j2").write_text(GOOD)
    (layout / "t.json.j2").symlink_to("real.json.j2")
    assert "is a symlink inside the templates folder" in _refused(layout)


def test_a_symlinked_intermediate_directory_is_refused(layout: Path) -> None:
    (layout / "sub").symlink_to(layout.parent / "outside")
    (layout / "t.json.j2").write_text('{% include "sub/secret.txt" %}')
    assert "passes through the symlink 'sub'" in _refused(layout)


@pytest.mark.parametrize(
    "name",
    ["../outside/secret.txt", "/etc/passwd", "a/../../outside/secret.txt", "./t.json.j2", "a//b"],
)
@pytest.mark.parametrize("tag", ["include", "import", "extends", "from"])
def test_names_that_leave_the_folder_are_refused(layout: Path, name: str, tag: str) -> None:
    statement = {
        "include": f'{{% include "{name}" %}}',
        "import": f'{{% import "{name}" as m %}}',
        "extends": f'{{% extends "{name}" %}}',
        "from": f'{{% from "{name}" import x %}}',
    }[tag]
    (layout / "t.json.j2").write_text(statement)
    message = _refused(layout)
    assert "component" in message or "absolute name" in message


def test_fifos_directories_hard_links_and_huge_files_are_refused(layout: Path) -> None:
    os.mkfifo(layout / "t.json.j2")  # must not hang: opened non-blocking, then fstat
    assert "is not a regular file" in _refused(layout)
    (layout / "t.json.j2").unlink()
    (layout / "t.json.j2").mkdir()
    assert "is not a regular file" in _refused(layout)
    (layout / "t.json.j2").rmdir()
    os.link(layout.parent / "outside" / "secret.txt", layout / "t.json.j2")
    assert "has other hard links" in _refused(layout)
    (layout / "t.json.j2").unlink()
    (layout / "t.json.j2").write_text(" " * (tg.MAX_TEMPLATE_BYTES + 1))
    assert f"is larger than {tg.MAX_TEMPLATE_BYTES} bytes" in _refused(layout)
    (layout / "t.json.j2").write_bytes(b"\xff\xfe")
    assert "is not UTF-8 text" in _refused(layout)


def test_the_templates_folder_must_be_real_and_inside_the_project(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "t.json.j2").write_text(GOOD)
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "specs").mkdir()
    spec = (
        "version: 1\ntemplates: {}\nroles:\n  r: {{template: t, grants: [{{bucket: corp-data}}]}}\n"
    )
    cases = {
        "../../outside": "is outside the project folder",
        str(tmp_path / "outside"): "is outside the project folder",
        "link": "passes through the symlink",
        "link/../tpl": "passes through the symlink",
    }
    (project / "specs" / "link").symlink_to(tmp_path / "outside")
    (project / "tpl").mkdir()
    (project / "tpl" / "t.json.j2").write_text(GOOD)
    for entry, expected in cases.items():
        (project / "specs" / "roles.yaml").write_text(spec.format(json.dumps(entry)))
        result = run_cli("compile", str(project / "specs" / "roles.yaml"))
        assert result.exit_code == 2, entry
        assert expected in result.output and "templates" in result.output, entry
    # a folder elsewhere in the project is fine, with '..' in the way
    (project / "specs" / "roles.yaml").write_text(spec.format('"../tpl"'))
    result = run_cli("compile", str(project / "specs" / "roles.yaml"))
    assert result.exit_code == 0 and "oss:GetObject" in result.output


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    links=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "d/a", "d/e", "t.j2", "d"]),
            st.sampled_from(
                [
                    "../outside/secret.txt",
                    "../outside",
                    "/proc/self/environ",
                    "in.j2",
                    "d",
                    "../../outside/x.json.j2",
                    "..",
                    "/",
                    "d/in.j2",
                    "../tpl/in.j2",
                ]
            ),
        ),
        max_size=4,
    ),
    name=st.lists(
        st.sampled_from(
            [
                "a",
                "b",
                "d",
                "e",
                "..",
                ".",
                "",
                "in.j2",
                "t.j2",
                "/",
                "outside",
                "secret.txt",
                "x.json.j2",
                "proc",
                "self",
                "environ",
            ]
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_no_name_or_symlink_layout_yields_outside_content(
    tmp_path_factory: pytest.TempPathFactory, links: list[tuple[str, str]], name: list[str]
) -> None:
    """Property: whatever symlinks the folder holds and whatever name a template includes,
    rendering either fails with a SpecError or yields only text from regular files inside."""
    root = tmp_path_factory.mktemp("prop")
    (root / "outside").mkdir()
    (root / "outside" / "secret.txt").write_text(SECRET)
    (root / "outside" / "x.json.j2").write_text(SECRET)
    folder = root / "tpl"
    (folder / "d").mkdir(parents=True)
    (folder / "in.j2").write_text("inside")
    (folder / "d" / "in.j2").write_text("inside-d")
    for path, target in links:
        p = folder / path
        if not os.path.lexists(p) and p.parent.is_dir() and not p.parent.is_symlink():
            p.symlink_to(target)
    include = "/".join(name)
    (folder / "t.json.j2").write_text("{% include " + json.dumps(include) + " %}")
    try:
        out = _render(folder)
    except SpecError as exc:
        assert SECRET not in str(exc)
    else:
        assert SECRET not in out
        assert out in ("inside", "inside-d", "{% include " + json.dumps(include) + " %}")


# --------------------------------------------------------------------------- bounds


BOUNDS = {
    "range": ("{% for i in range(10**9) %}{% endfor %}", "a range of 1000000000 items"),
    "mul": ('{{ "a" * 10**9 }}', "a value with '*' larger than"),
    "listmul": ("{% set l = [[1]*50000]*50000 %}{{ l|length }}", "a value with '*'"),
    "pow": ("{{ 10 ** 10 ** 10 }}", f"an integer of more than {tg.MAX_INT_BITS} bits"),
    "floatpow": ("{{ 2.0 ** 100000 }}", f"an integer of more than {tg.MAX_INT_BITS} bits"),
    "bigmul": ("{{ (2 ** 200) * (2 ** 200) * (2 ** 200) }}", "more than 256 bits"),
    "nested": (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        f"more than {tg.MAX_LOOP_ITERATIONS} loop iterations",
    ),
    "concat": (
        '{% set ns = namespace(s="a") %}{% for i in range(80) %}{% set ns.s = ns.s ~ ns.s %}'
        "{% endfor %}",
        "a string with '~'",
    ),
    "ljust": ('{{ "a".ljust(10**9) }}', "passed the number 1000000000 as a width"),
    "center": ('{{ "a"|center(10**9) }}', "passed the number 1000000000 as a width"),
    "replace": ('{% set s = "a" * 50000 %}{{ s.replace("", s) }}', "the result of 'replace'"),
    "join": ('{% set s = "a" * 50000 %}{{ s.join([s, s]) }}', "the result of 'join'"),
    "joinf": ('{% set s = "a" * 50000 %}{{ [s, s]|join(s) }}', "the 'join' filter"),
    "format": ('{{ "{:>999999999}".format(1) }}', "the result of 'format'"),
    "percent": ('{{ "%999999999d" % 1 }}', "a string with '%'"),
    "indent": ('{% set s = "a\n" * 30000 %}{{ s|indent(60000) }}', "the 'indent' filter"),
    "recursion": ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "recursed too deeply"),
    "fanout": (
        "{% macro m(n) %}{% if n %}{{ m(n-1) }}{{ m(n-1) }}{% endif %}{% endmacro %}{{ m(40) }}",
        "more than 5000 calls",
    ),
    "output": (
        "{% for i in range(10000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}",
        f"rendered more than {tg.MAX_OUTPUT_BYTES} characters",
    ),
    "blockset": (
        '{% set s = "a" * 60000 %}{% set big %}{% for i in range(10000) %}{{ s }}{% endfor %}'
        "{% endset %}",
        f"produced more than {tg.MAX_PRODUCED} characters",
    ),
    "literal": (
        "{% macro m() %}{% for i in range(10000) %}" + "x" * 1000 + "{% endfor %}{% endmacro %}"
        "{{ m()|length }}",
        f"produced more than {tg.MAX_PRODUCED} characters",
    ),
    "constant": (
        "{% set b %}{% for i in range(10000) %}{{ '" + "y" * 1000 + "' }}{% endfor %}{% endset %}",
        f"produced more than {tg.MAX_PRODUCED} characters",
    ),
    "translate": ('{{ "a".translate({97: "b" * 1000}) }}', "sandbox does not allow"),
    "expandtabs": ('{{ ("\t" * 50000).expandtabs(50000) }}', "sandbox does not allow"),
    "lipsum": ("{{ lipsum(10**6) }}", "'lipsum' is undefined"),
    "nesting": ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "is nested too deeply"),
    "divzero": ("{{ 1 // 0 }}", "ZeroDivisionError"),
}


@pytest.mark.parametrize("case", sorted(BOUNDS))
def test_every_bound_is_a_clear_error(
    layout: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tg, "MAX_CALLS", 5000)  # the same check, sooner
    body, expected = BOUNDS[case]
    (layout / f"{case}.json.j2").write_text(body)
    message = _refused(layout, case)
    assert f"template {case!r}" in message
    assert expected in message


def test_the_time_budget_is_enforced(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tg, "RENDER_SECONDS", 0.05)
    # within every count limit, but slow: 99,999 iterations with a call each
    (layout / "slow.json.j2").write_text(
        "{% for i in range(9999) %}{% for j in range(9) %}{{ i|string|length }}"
        "{% endfor %}{% endfor %}"
    )
    assert "took longer than 0.05 s" in _refused(layout, "slow")


def test_values_within_the_bounds_render_as_before(layout: Path) -> None:
    """Ordinary templates are unaffected; every ``{{ expression }}`` is JSON, constant or not
    (jinja folds constant expressions at compile time; they are encoded like the others)."""
    (layout / "ok.json.j2").write_text(
        '{% macro m() %}"x"{% endmacro %}{{ m() ~ "<" }} {{ 86400000 }} {{ "%d" % 86400000 }} '
        '{{ ["a", "b"]|join(",") }} {{ "a b".replace(" ", "-") }} {{ range(3)|list }} '
        '{{ "ab".upper() }} {{ x|default(3600000) }} {{ 1.5 ** 10 }} {{ 2 ** 255 > 0 }} {{ "ab" }}'
    )
    assert _render(layout, "ok") == (
        '"x"&lt; 86400000 "86400000" "a,b" "a-b" [0, 1, 2] "AB" 3600000 57.6650390625 true "ab"'
    )


def test_large_but_legal_values_are_not_refused(layout: Path) -> None:
    """The size checks estimate the real size: 1,000 ARNs joined (about 45,000 characters)."""
    arn = "acs:oss:*:1234567890123456:bucket/some/prefix/"
    (layout / "big.json.j2").write_text(
        f'{{% set arns = ["{arn}"] * 1000 %}}'
        '{{ arns|join(",")|length }} {{ ",".join(arns)|length }} {{ ("%s" % arns[0])|length }} '
        '{{ "{}".format(arns|join(","))|length }} {{ (arns|join(",")).replace("/", "|")|length }}'
    )
    n = len(arn) * 1000 + 999
    assert _render(layout, "big") == f"{n} {n} {len(arn)} {n} {n}"


# --------------------------------------------------------------------------- review


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    _git(r, "init", "-q", "-b", "main")
    _git(r, "config", "user.email", "t@example.invalid")
    _git(r, "config", "user.name", "t")
    (r / "templates").mkdir()
    (r / "templates" / "audit.json.j2").write_text(GOOD)
    (r / "roles.yaml").write_text(
        BASE.replace("version: 1\n", "version: 1\ntemplates: templates\n")
        + "  auditor:\n    template: audit\n    grants: [{bucket: corp-data}]\n"
    )
    _git(r, "add", "-A")
    _git(r, "commit", "-qm", "base")
    return r


LEAKY = (
    '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"], '
    '"Resource": ["acs:oss:*:*:corp-data/{% include "leak.json.j2" %}"]}]}'
)


def test_review_of_the_reported_pull_request_is_refused(repo: Path) -> None:
    """A pull request adds templates/leak.json.j2 -> /proc/self/environ and includes it."""
    (repo / "templates" / "leak.json.j2").symlink_to("/proc/self/environ")
    (repo / "templates" / "audit.json.j2").write_text(LEAKY)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "leak")
    os.environ["PERMGEN_TEST_LEAK_PROBE"] = SECRET
    try:
        result = run_cli(
            "review", str(repo / "roles.yaml"), "--base", "HEAD~1", "--format", "markdown"
        )
    finally:
        del os.environ["PERMGEN_TEST_LEAK_PROBE"]
    assert result.exit_code == 2
    assert SECRET not in result.output
    assert "the spec does not compile in the working tree" in result.output
    assert "template 'leak.json.j2' is a symlink to outside the templates folder" in result.output
    assert "role auditor" in result.output


@pytest.mark.parametrize(
    "target", ["/proc/self/environ", "../../outside-secret.txt", "../roles.yaml", "audit.json.j2"]
)
def test_a_base_revision_symlink_is_written_as_a_blob_never_followed(
    repo: Path, target: str
) -> None:
    (repo.parent / "outside-secret.txt").write_text(SECRET)
    (repo / "templates" / "leak.json.j2").symlink_to(target)
    (repo / "templates" / "audit.json.j2").write_text(LEAKY)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "leak at base")
    # the working tree no longer has the symlink: only the base revision does
    (repo / "templates" / "leak.json.j2").unlink()
    (repo / "templates" / "audit.json.j2").write_text(GOOD)
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD", "--format", "json")
    assert result.exit_code == 2
    assert SECRET not in result.output and "Traceback" not in result.output
    if target.startswith(("/", "../../")):  # outside the repository: refused on export
        assert (
            "templates/leak.json.j2 is a symlink at base revision HEAD that points outside "
            "the repository" in result.output
        )
    else:  # written as a symlink, which the template loader refuses to follow
        assert "the spec does not compile at base revision HEAD" in result.output
        where = "inside" if target == "audit.json.j2" else "to outside"
        assert f"template 'leak.json.j2' is a symlink {where} the templates folder" in result.output


def test_a_base_revision_symlinked_templates_folder_is_refused(repo: Path) -> None:
    (repo.parent / "outside").mkdir()
    _git(repo, "rm", "-rq", "templates")
    (repo / "templates").symlink_to("../outside")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "folder link")
    _git(repo, "rm", "-q", "templates")
    (repo / "templates").mkdir()
    (repo / "templates" / "audit.json.j2").write_text(GOOD)
    _git(repo, "add", "templates")
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD", "--format", "json")
    assert result.exit_code == 2
    assert (
        "templates is a symlink at base revision HEAD that points outside the repository"
        in result.output
    )


def test_a_working_tree_symlink_with_an_unchanged_base_does_not_trace_back(repo: Path) -> None:
    """The base side never resolves paths through the working tree."""
    (repo / "templates" / "audit.json.j2").unlink()
    (repo / "templates" / "audit.json.j2").symlink_to("/proc/self/environ")
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD", "--format", "text")
    assert result.exit_code == 2
    assert "is a symlink to outside the templates folder" in result.output


def test_review_reads_only_templates_git_tracks(repo: Path) -> None:
    """A CI job may leave files in the working tree (credentials, say): a pull request's
    template cannot include one, even inside the templates folder."""
    (repo / "templates" / "creds.json").write_text(SECRET)  # untracked, like a CI's file
    (repo / "templates" / "audit.json.j2").write_text(LEAKY.replace("leak.json.j2", "creds.json"))
    _git(repo, "add", "templates/audit.json.j2")
    _git(repo, "commit", "-qm", "include a file the CI left")
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD~1")
    assert result.exit_code == 2
    assert SECRET not in result.output
    assert "template 'creds.json' is not tracked by git" in result.output
    # a tracked file is read as before
    (repo / "templates" / "creds.json").write_text("fine")
    _git(repo, "add", "templates/creds.json")
    _git(repo, "commit", "-qm", "track it")
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD~2", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "acs:oss:*:*:corp-data/fine" in result.output


def test_git_internals_are_never_templates(repo: Path) -> None:
    """actions/checkout leaves the token in .git/config: neither a folder nor a name can
    reach it."""
    spec = (repo / "roles.yaml").read_text()
    (repo / "roles.yaml").write_text(spec.replace("templates: templates", "templates: .git"))
    result = run_cli("compile", str(repo / "roles.yaml"))
    assert result.exit_code == 2
    assert "'.git' is inside a .git folder" in result.output
    (repo / "roles.yaml").write_text(spec.replace("templates: templates", "templates: ."))
    (repo / "audit.json.j2").write_text(LEAKY.replace("leak.json.j2", ".git/config"))
    result = run_cli("compile", str(repo / "roles.yaml"))
    assert result.exit_code == 2
    assert "template '.git/config' is inside a .git folder" in result.output


def test_a_symlinked_spec_is_refused_by_review(repo: Path) -> None:
    (repo / "real.yaml").write_text((repo / "roles.yaml").read_text())
    (repo / "roles.yaml").unlink()
    (repo / "roles.yaml").symlink_to("real.yaml")
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD")
    assert result.exit_code == 2
    assert "roles.yaml: is a symlink" in result.output


# --------------------------------------------------------------------------- no secret anywhere

SECRET_VARS = (
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "CI_JOB_TOKEN",
    "CI_REGISTRY_PASSWORD",
    "PERMGEN_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "PERMGEN_PROBE",  # not secret-looking: only confinement keeps it out
)

#: Each vector: extra files in the templates folder, and the body of audit.json.j2.
VECTORS: dict[str, tuple[dict[str, str], str]] = {
    "environ": ({"leak.json.j2": "@/proc/self/environ"}, LEAKY),
    "token-file": ({"leak.json.j2": "@../../token.txt"}, LEAKY),
    "dotdot": ({}, LEAKY.replace("leak.json.j2", "../../token.txt")),
    "absolute": ({}, LEAKY.replace("leak.json.j2", "/proc/self/environ")),
    "dir-link": ({"sub": "@/proc/self"}, LEAKY.replace("leak.json.j2", "sub/environ")),
    "import": ({"leak.json.j2": "@/proc/self/environ"}, '{% import "leak.json.j2" as x %}' + GOOD),
    "extends": ({"leak.json.j2": "@../../token.txt"}, '{% extends "leak.json.j2" %}'),
    "self-link": ({}, "@/proc/self/environ"),
    "sandbox": ({}, '{{ allow(["oss:GetObject"], [grants.__class__.__mro__|string]) }}'),
}


def _scenario(root: Path, vector: str, side: str) -> Path:
    """A repository whose working tree (side "head") or base revision HEAD (side "base")
    holds ``vector``; the other side is clean. A file next to it holds the secret."""
    files, body = VECTORS[vector]
    root.mkdir(parents=True)
    (root / "token.txt").write_text(SECRET)
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.invalid")
    _git(repo, "config", "user.name", "t")
    (repo / "roles.yaml").write_text(
        "version: 1\ntemplates: templates\nroles:\n"
        "  auditor: {template: audit, grants: [{bucket: corp-data}]}\n"
    )
    (repo / "templates").mkdir()
    leak = {**files, "audit.json.j2": body}
    clean = {"audit.json.j2": GOOD}
    for name, content in (leak if side == "base" else clean).items():
        _put(repo / "templates" / name, content)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "rm", "-rq", "templates")
    (repo / "templates").mkdir()
    for name, content in (clean if side == "base" else leak).items():
        _put(repo / "templates" / name, content)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "the pull request")  # reviewed against HEAD~1
    return repo


def _put(path: Path, content: str) -> None:
    if content.startswith("@"):
        path.symlink_to(content[1:])
    else:
        path.write_text(content)


def _secret_env(monkeypatch: pytest.MonkeyPatch | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PERMGEN_CACHE_DIR": "off"}
    env.update(dict.fromkeys(SECRET_VARS, SECRET))
    if monkeypatch is not None:
        for name in SECRET_VARS:
            monkeypatch.setenv(name, SECRET)
    return env


@pytest.mark.parametrize("side", ["head", "base"])
@pytest.mark.parametrize("vector", sorted(VECTORS))
def test_no_vector_leaks_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vector: str, side: str
) -> None:
    """Every vector, at either side of a review, through review, compile and lint."""
    repo = _scenario(tmp_path / "s", vector, side)
    _secret_env(monkeypatch)
    spec = str(repo / "roles.yaml")
    outputs = []
    for argv in (
        ["review", spec, "--base", "HEAD~1", "--format", "markdown"],
        ["review", spec, "--base", "HEAD~1", "--format", "json"],
        ["compile", spec, "--out", str(tmp_path / "out")],
        ["lint", spec],
    ):
        result = run_cli(*argv)
        outputs.append(result.output)
        expected = 0 if side == "base" and argv[0] != "review" else 2
        assert result.exit_code == expected, (argv, result.output)
    text = "\n".join(outputs)
    assert SECRET not in text
    if vector != "sandbox":
        assert any(w in text for w in ("symlink", "component", "absolute name")), text


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout + proc.stderr


def test_no_secret_reaches_any_output(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Subprocess runs with fake secrets in the environment and a file holding one next to
    the repository: review in every format, compile (stdout and written files), lint, explain
    and the GitHub Action's script with everything it writes and posts to the (local) API."""
    from concurrent.futures import ThreadPoolExecutor

    api_url = request.getfixturevalue("api")
    env = _secret_env()
    jobs: list[tuple[list[str], dict[str, str], Path]] = []
    expected: list[int] = []
    for side in ("head", "base"):
        # the working tree links to a file of secrets; the base revision to the environment
        repo = _scenario(tmp_path / side, "token-file" if side == "head" else "environ", side)
        spec = str(repo / "roles.yaml")
        formats = ("text", "json", "markdown", "sarif") if side == "head" else ("markdown",)
        for fmt in formats:
            argv = ["permgen", "review", spec, "--base", "HEAD~1", "--format", fmt]
            jobs.append((argv, env, repo))
        jobs.append(
            (["permgen", "compile", spec, "--out", str(tmp_path / side / "out")], env, repo)
        )
        jobs.append((["permgen", "lint", spec, "--format", "sarif"], env, repo))
        gh = {**_env(repo, api_url, tmp_path / side), **env, "PERMGEN_BASE": "HEAD~1"}
        jobs.append((["permgen.integrations.github"], gh, repo))
        # review fails at either side; compile and lint only where the working tree leaks
        compiles = 2 if side == "head" else 0
        expected += [2] * len(formats) + [compiles, compiles, 2]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda job: _run(*job), jobs))
    assert [code for code, _ in results] == expected, results
    outputs = [out for _, out in results]
    # the base side compiles in the working tree: its policies, explained
    policies = sorted(str(p) for p in (tmp_path / "base" / "out").iterdir())
    assert policies
    code, out = _run(
        [
            "permgen",
            "explain",
            *policies,
            "--action",
            "oss:GetObject",
            "--resource",
            "acs:oss:*:*:corp-data/x",
        ],
        env,
        tmp_path,
    )
    assert code == 0
    outputs.append(out)
    outputs += [Path(p).read_text() for p in policies]
    for side in ("head", "base"):
        outputs.append((tmp_path / side / "summary.md").read_text())
        outputs.append((tmp_path / side / "output.txt").read_text())
    posted = [c for c in _Api.calls if c[0] in ("POST", "PATCH")]
    assert len(posted) == 2
    assert {c[2] for c in _Api.calls if c[0] == "GET"} == {f"Bearer {SECRET}"}  # only there
    outputs += [json.dumps(c[2]) for c in posted]
    text = "\n".join(outputs)
    assert "symlink" in text  # the leak was refused, not absent
    assert SECRET not in text
