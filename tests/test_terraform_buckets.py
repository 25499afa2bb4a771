"""Terraform for a spec's ``buckets:`` (``compile --format terraform`` -> ``buckets/<b>.tf``).

The golden files in tests/golden/buckets-terraform are what
``permgen compile examples/buckets.yaml --format terraform --out tests/golden/buckets-terraform``
writes (rerun it to update them, then read every change: the golden files are worth
something only when a person has checked them against the spec). The content tests parse
the HCL permgen writes (its own layout, which is terraform fmt's) far enough to check each
resource, argument and the policy document against the spec. The terraform binary runs
where it exists, as in test_terraform.py.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.spec.bucket_terraform import bucket_label, bucket_terraform_text
from permgen.spec.compile import compile_bucket_policy, compile_file
from permgen.spec.outputs import render_outputs
from permgen.spec.types import BucketRule, BucketSpec, BucketStatementSpec
from tests.conftest import EXAMPLES, ROOT, run_cli
from tests.test_terraform import _terraform, needs_terraform

GOLDEN = ROOT / "tests" / "golden" / "buckets-terraform"
BUCKETS_SPEC = EXAMPLES / "buckets.yaml"
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

#: A spec's smallest roles: section (a spec needs a role).
MINIMAL = "version: 1\nroles:\n  r:\n    template: reader\n    grants:\n      - bucket: b1b\n"

#: Every setting, the unusual values too: a bucket starting with a digit, user names that
#: differ only in . and @, ${ in a prefix, versioning suspended and off, empty rule lists.
EVERYTHING = """\
version: 1
defaults:
  account: "1234567890123456"
roles:
  r:
    template: reader
    grants:
      - bucket: 9data
buckets:
  9data:
    versioning: suspended
    overwrite_protection:
      - prefix: "a${x}/"
        suffix: ".log"
        principals: ["user:a.b", "user:a@b", "account:1111111111111111", "anonymous"]
      - prefix: "b/"
    replication:
      - target: data-dr
        location: oss-cn-beijing
      - target: data-dr
        prefix: "x/"
    policy:
      - effect: Allow
        principals: ["user:a.b", "role:Reader"]
        actions: ["oss:GetObject"]
        resources: ["9data/p/*"]
  data-dr:
    versioning: "off"
    retention_days: 30
    overwrite_protection: []
    replication: []
    lifecycle: []
    policy: []
"""


# ------------------------------------------------------------------ a small HCL reader


def _depth(text: str) -> int:
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
    return depth


def parse_hcl(text: str) -> list[dict[str, Any]]:
    """The top-level blocks of ``text``: ``{"type", "labels", "attrs", "blocks"}`` with each
    attribute's value as written (a multi-line value joined) and nested blocks likewise.
    Fails on any line that is not a comment, a block, an attribute or a closing brace."""
    root: dict[str, Any] = {"blocks": []}
    stack = [root]
    lines = iter(text.splitlines())
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        block = re.fullmatch(r'([\w-]+)((?: "[^"]*")*) \{', s)
        if block:
            new = {
                "type": block[1],
                "labels": re.findall(r'"([^"]*)"', block[2]),
                "attrs": {},
                "blocks": [],
            }
            stack[-1]["blocks"].append(new)
            stack.append(new)
            continue
        if s == "}":
            stack.pop()
            continue
        attr = re.fullmatch(r"([\w-]+) += (.*)", s)
        assert attr, f"not HCL permgen writes: {line!r}"
        value = attr[2]
        while _depth(value) > 0:
            value += "\n" + next(lines)
        stack[-1]["attrs"][attr[1]] = value
    assert len(stack) == 1, "unbalanced braces"
    return list(root["blocks"])


def _value(raw: str) -> Any:
    """A literal attribute value (string, number, list of strings) as Python."""
    return json.loads(raw.replace("$${", "${").replace("%%{", "%{"))


def _resources(text: str, kind: str = "resource") -> dict[tuple[str, str], dict[str, Any]]:
    return {(b["labels"][0], b["labels"][1]): b for b in parse_hcl(text) if b["type"] == kind}


def _nested(block: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [b for b in block["blocks"] if b["type"] == name]


def _comments(text: str) -> str:
    """The comment lines of ``text`` as one line of prose (they wrap at about 92 columns)."""
    return " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))


def _code(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _prevents_destroy(block: dict[str, Any]) -> bool:
    return any(b["attrs"].get("prevent_destroy") == "true" for b in _nested(block, "lifecycle"))


def _policy_document(raw: str) -> Any:
    """The jsonencode argument as JSON, each user lookup written ``<ref LABEL>``."""
    assert raw.startswith("jsonencode(") and raw.endswith(")")
    body = re.sub(r"data\.alicloud_ram_users\.([\w-]+)\.users\[0\]\.id", r'"<ref \1>"', raw[11:-1])
    return json.loads(body.replace("$${", "${").replace("%%{", "%{"))


def _bucket_files(tmp_path: Path, spec_text: str, *extra: str) -> dict[str, str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text)
    out = tmp_path / "out"
    result = run_cli("compile", str(spec), "--format", "terraform", "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    return {p.name: p.read_text() for p in (out / "buckets").glob("*.tf")}


# ------------------------------------------------------------------ golden and --check


def test_the_buckets_example_compiles_to_the_golden_terraform(tmp_path: Path) -> None:
    result = run_cli("compile", str(BUCKETS_SPEC), "--format", "terraform", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.tf"))
    golden = sorted(str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*.tf"))
    assert (
        written
        == golden
        == [
            "buckets/audit-vault.tf",
            "buckets/logs-dr.tf",
            "buckets/logs-raw.tf",
            "etl-writer.tf",
        ]
    )
    for name in golden:
        assert (tmp_path / name).read_text() == (GOLDEN / name).read_text(), name
    check = run_cli(
        "compile", str(BUCKETS_SPEC), "--format", "terraform", "--out", str(GOLDEN), "--check"
    )
    assert check.exit_code == 0, check.output


def test_check_reports_stale_missing_and_extra_bucket_files(tmp_path: Path) -> None:
    run_cli("compile", str(BUCKETS_SPEC), "--format", "terraform", "--out", str(tmp_path))
    check = ["compile", str(BUCKETS_SPEC), "--format", "terraform", "--out", str(tmp_path),
             "--check"]  # fmt: skip
    raw = tmp_path / "buckets" / "logs-raw.tf"
    text = raw.read_text()
    # layout only (what terraform fmt changes): still current
    raw.write_text(text.replace("  bucket = ", "  bucket     =   "))
    assert run_cli(*check).exit_code == 0
    # a string changed: stale
    raw.write_text(text.replace('"Locked"', '"InProgress"').replace('"raw/"', '"raw/x"', 1))
    (tmp_path / "buckets" / "logs-dr.tf").unlink()
    (tmp_path / "buckets" / "old-bucket.tf").write_text("# a bucket taken out of the spec\n")
    (tmp_path / "buckets" / "notes.txt").write_text("not Terraform: not ours to report\n")
    result = run_cli(*check)
    assert result.exit_code == 4
    lines = result.output.splitlines()
    assert f"stale:   {raw}" in lines
    assert f"missing: {tmp_path / 'buckets' / 'logs-dr.tf'}" in lines
    assert f"extra:   {tmp_path / 'buckets' / 'old-bucket.tf'}" in lines
    assert "notes.txt" not in result.output
    # the JSON format's check does not count Terraform files as its own
    json_out = tmp_path / "json"
    run_cli("compile", str(BUCKETS_SPEC), "--out", str(json_out))
    (json_out / "buckets" / "logs-raw.tf").write_text(text)
    assert run_cli("compile", str(BUCKETS_SPEC), "--out", str(json_out), "--check").exit_code == 0


@needs_terraform
def test_bucket_terraform_passes_terraform_fmt_check(tmp_path: Path) -> None:
    for name, spec_text, extra in [
        ("example", BUCKETS_SPEC.read_text(), ()),
        ("example-import", BUCKETS_SPEC.read_text(), ("--import-existing",)),
        ("everything", EVERYTHING, ()),
        ("everything-import", EVERYTHING, ("--import-existing",)),
    ]:
        d = tmp_path / name
        d.mkdir()
        files = _bucket_files(d, spec_text, *extra)
        assert files
        result = _terraform("fmt", "-check", "-diff", "-recursive", ".", cwd=d / "out")
        assert result.returncode == 0, name + result.stdout + result.stderr
    golden = _terraform("fmt", "-check", "-diff", "-recursive", str(GOLDEN), cwd=ROOT)
    assert golden.returncode == 0, golden.stdout + golden.stderr


@needs_terraform
def test_compile_check_accepts_bucket_files_after_terraform_fmt(tmp_path: Path) -> None:
    run_cli("compile", str(BUCKETS_SPEC), "--format", "terraform", "--out", str(tmp_path))
    path = tmp_path / "buckets" / "logs-raw.tf"
    text = path.read_text()
    path.write_text(
        text.replace("  bucket   = ", "  bucket = ").replace('"Version" : "1"', '"Version":"1"')
    )
    assert path.read_text() != text
    check = ["compile", str(BUCKETS_SPEC), "--format", "terraform", "--out", str(tmp_path),
             "--check"]  # fmt: skip
    assert run_cli(*check).exit_code == 0
    assert _terraform("fmt", "-recursive", ".", cwd=tmp_path).returncode == 0
    assert path.read_text() == text
    assert run_cli(*check).exit_code == 0


# ------------------------------------------------------------------ content per setting


def test_the_example_buckets_resources_and_arguments() -> None:
    raw = (GOLDEN / "buckets" / "logs-raw.tf").read_text()
    res = _resources(raw)
    assert sorted(res) == [
        ("alicloud_oss_bucket_overwrite_config", "logs-raw"),
        ("alicloud_oss_bucket_policy", "logs-raw"),
        ("alicloud_oss_bucket_replication", "logs-raw_to_logs-dr"),
        ("alicloud_oss_bucket_versioning", "logs-raw"),
    ]
    assert all(_prevents_destroy(b) for b in res.values())
    assert all(_value(b["attrs"]["bucket"]) == "logs-raw" for b in res.values())
    assert _value(res["alicloud_oss_bucket_versioning", "logs-raw"]["attrs"]["status"]) == "Enabled"

    (rule,) = _nested(res["alicloud_oss_bucket_overwrite_config", "logs-raw"], "rule")
    assert {k: _value(v) for k, v in rule["attrs"].items()} == {
        "id": "permgen-0",
        "action": "forbid",
        "prefix": "raw/",
    }
    (principals,) = _nested(rule, "principals")
    assert _value(principals["attrs"]["principal"]) == [
        "arn:sts::1234567890123456:assumed-role/EtlRole/*"
    ]

    rep = res["alicloud_oss_bucket_replication", "logs-raw_to_logs-dr"]
    assert _value(rep["attrs"]["action"]) == "ALL"
    (dest,) = _nested(rep, "destination")
    assert _value(dest["attrs"]["bucket"]) == "logs-dr"
    # no location in the spec: the provider's region, as apply uses its --region
    assert dest["attrs"]["location"] == '"oss-${data.alicloud_regions.logs-raw_region.ids[0]}"'
    assert _resources(raw, "data")["alicloud_regions", "logs-raw_region"]["attrs"] == {
        "current": "true"
    }
    (prefix_set,) = _nested(rep, "prefix_set")
    assert _value(prefix_set["attrs"]["prefixes"]) == ["raw/"]

    # lifecycle rules: a comment, no resource
    assert not any("lifecycle" in t for t, _ in res)
    assert 'Not expressed: lifecycle rules (expire objects under "tmp/" after 7 days).' in (
        _comments(raw)
    )

    vault = _resources((GOLDEN / "buckets" / "audit-vault.tf").read_text())
    worm = vault["alicloud_oss_bucket_worm", "audit-vault"]
    assert {k: v for k, v in worm["attrs"].items()} == {
        "bucket": '"audit-vault"',
        "retention_period_in_days": "365",
        "status": '"Locked"',
    }
    assert _prevents_destroy(worm) and len(vault) == 1
    dr = _resources((GOLDEN / "buckets" / "logs-dr.tf").read_text())
    assert list(dr) == [("alicloud_oss_bucket_versioning", "logs-dr")]


def test_the_policy_is_the_compiled_bucket_policy_with_users_looked_up() -> None:
    compiled = compile_file(BUCKETS_SPEC)
    policy = compiled.buckets["logs-raw"]
    assert policy is not None
    text = (GOLDEN / "buckets" / "logs-raw.tf").read_text()
    block = _resources(text)["alicloud_oss_bucket_policy", "logs-raw"]
    expected = policy.to_json()
    expected["Statement"][0]["Principal"][0] = "<ref logs-raw_user_analytics-bot>"
    assert expected["Statement"][0]["Principal"] == [
        "<ref logs-raw_user_analytics-bot>",
        "1111111111111111",
    ]
    assert _policy_document(block["attrs"]["policy"]) == expected
    # the lookup names exactly that user, and fails the plan unless exactly one matched
    lookup = _resources(text, "data")["alicloud_ram_users", "logs-raw_user_analytics-bot"]
    assert _value(lookup["attrs"]["name_regex"]) == "^analytics-bot$"
    (life,) = _nested(lookup, "lifecycle")
    (post,) = _nested(life, "postcondition")
    assert post["attrs"]["condition"] == "length(self.users) == 1"
    assert "user:analytics-bot" in _value(post["attrs"]["error_message"])
    assert "user:" not in block["attrs"]["policy"]  # no marker reaches OSS


def test_every_setting_and_the_unusual_values(tmp_path: Path) -> None:
    files = _bucket_files(tmp_path, EVERYTHING)
    assert sorted(files) == ["9data.tf", "data-dr.tf"]
    nine = files["9data.tf"]
    res = _resources(nine)
    data = _resources(nine, "data")
    # a leading digit: a label starting with _; hyphens kept (valid in Terraform labels)
    assert bucket_label("9data") == "_9data" and bucket_label("data-dr") == "data-dr"
    assert ("alicloud_oss_bucket_versioning", "_9data") in res
    assert _value(res["alicloud_oss_bucket_versioning", "_9data"]["attrs"]["status"]) == (
        "Suspended"
    )
    # a.b and a@b both become a_b: told apart deterministically, in first-use order
    assert _value(data["alicloud_ram_users", "_9data_user_a_b"]["attrs"]["name_regex"]) == (
        "^a\\.b$"
    )
    assert _value(data["alicloud_ram_users", "_9data_user_a_b_2"]["attrs"]["name_regex"]) == (
        "^a@b$"
    )
    rules = _nested(res["alicloud_oss_bucket_overwrite_config", "_9data"], "rule")
    assert [{k: _value(v) for k, v in r["attrs"].items()} for r in rules] == [
        {"id": "permgen-0", "action": "forbid", "prefix": "a${x}/", "suffix": ".log"},
        {"id": "permgen-1", "action": "forbid", "prefix": "b/"},
    ]
    assert '"a$${x}/"' in nine  # never interpolated
    (principals,) = _nested(rules[0], "principals")
    assert principals["attrs"]["principal"] == (
        "[data.alicloud_ram_users._9data_user_a_b.users[0].id, "
        "data.alicloud_ram_users._9data_user_a_b_2.users[0].id, "
        '"1111111111111111", "*"]'
    )
    assert not _nested(rules[1], "principals")  # none: everyone
    # two rules to one target: two resources; a given location is used as written
    reps = {k[1]: v for k, v in res.items() if k[0] == "alicloud_oss_bucket_replication"}
    assert sorted(reps) == ["_9data_to_data-dr", "_9data_to_data-dr_2"]
    (d1,) = _nested(reps["_9data_to_data-dr"], "destination")
    assert _value(d1["attrs"]["location"]) == "oss-cn-beijing"
    assert not _nested(reps["_9data_to_data-dr"], "prefix_set")
    (p2,) = _nested(reps["_9data_to_data-dr_2"], "prefix_set")
    assert _value(p2["attrs"]["prefixes"]) == ["x/"]
    doc = _policy_document(res["alicloud_oss_bucket_policy", "_9data"]["attrs"]["policy"])
    assert doc["Statement"][0]["Principal"] == [
        "<ref _9data_user_a_b>",
        "arn:sts::1234567890123456:assumed-role/Reader/*",
    ]
    assert all(_prevents_destroy(b) for b in res.values())

    dr = _comments(files["data-dr.tf"])
    assert list(_resources(files["data-dr.tf"])) == [("alicloud_oss_bucket_worm", "data-dr")]
    # off and the empty lists: nothing that removes a protection, a comment naming the flag
    assert "versioning: off is not expressed" in dr
    assert "--allow-remove-overwrite-protection data-dr" in dr
    assert "--allow-remove-replication data-dr" in dr
    assert "--allow-delete-bucket-policy data-dr" in dr
    assert "Not expressed: lifecycle: [] (no rules)" in dr


def test_versioning_is_suspended_only_when_the_spec_says_so(tmp_path: Path) -> None:
    for value, status in [("enabled", "Enabled"), ("suspended", "Suspended"), ('"off"', None)]:
        d = tmp_path / value.strip('"')
        d.mkdir()
        spec = MINIMAL + f"buckets:\n  b1b:\n    versioning: {value}\n"
        text = _bucket_files(d, spec)["b1b.tf"]
        found = [
            _value(b["attrs"]["status"])
            for (t, _), b in _resources(text).items()
            if t == "alicloud_oss_bucket_versioning"
        ]
        assert found == ([status] if status else [])
        assert ("Suspended" in _code(text)) == (status == "Suspended")


def test_import_existing_adds_import_blocks_where_the_id_is_the_bucket(tmp_path: Path) -> None:
    spec_text = BUCKETS_SPEC.read_text()
    files = _bucket_files(tmp_path, spec_text, "--import-existing")
    imports = [
        (b["attrs"]["to"], _value(b["attrs"]["id"]))
        for b in parse_hcl(files["logs-raw.tf"])
        if b["type"] == "import"
    ]
    assert imports == [
        ("alicloud_oss_bucket_versioning.logs-raw", "logs-raw"),
        ("alicloud_oss_bucket_overwrite_config.logs-raw", "logs-raw"),
        ("alicloud_oss_bucket_policy.logs-raw", "logs-raw"),
    ]
    # worm and replication ids need ids only the account knows: a comment, no block
    assert "import {" not in files["audit-vault.tf"]
    assert "terraform import alicloud_oss_bucket_worm.audit-vault audit-vault:<WormId" in (
        _comments(files["audit-vault.tf"])
    )
    assert "No import blocks for replication rules" in files["logs-raw.tf"]
    plain = (GOLDEN / "buckets" / "logs-raw.tf").read_text()
    assert "import {" not in plain


def test_a_value_cannot_leave_its_comment(tmp_path: Path) -> None:
    spec = textwrap.dedent(
        """\
        buckets:
          b1b:
            lifecycle:
              - prefix: "x\\nresource \\"alicloud_oss_bucket_policy\\" \\"evil\\" {"
                expire_days: 1
        """
    )
    text = _bucket_files(tmp_path, MINIMAL + spec)["b1b.tf"]
    assert all(line.startswith("#") or not line for line in text.splitlines())
    assert parse_hcl(text) == []


def test_the_example_specs_with_buckets_compile_to_terraform(tmp_path: Path) -> None:
    specs = [
        p for p in sorted(EXAMPLES.rglob("*.yaml")) if re.search(r"^buckets:", p.read_text(), re.M)
    ]
    assert BUCKETS_SPEC in specs
    for spec in specs:
        compiled = compile_file(spec)
        files = render_outputs(compiled, fmt="terraform")
        for name in compiled.spec.buckets:
            text = files[f"buckets/{name}.tf"]
            parse_hcl(text)  # every line is a comment, a block, an attribute or a brace


# ------------------------------------------------------------------ labels (property)

BUCKET_NAMES = st.from_regex(r"[a-z0-9][a-z0-9-]{1,10}[a-z0-9]", fullmatch=True)
USER_NAMES = st.from_regex(r"[A-Za-z0-9._@-]{1,12}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    buckets=st.lists(BUCKET_NAMES, min_size=1, max_size=4, unique=True),
    users=st.lists(USER_NAMES, min_size=1, max_size=4, unique=True),
    targets=st.lists(BUCKET_NAMES, min_size=1, max_size=3),
)
def test_labels_are_valid_unique_and_deterministic(
    buckets: list[str], users: list[str], targets: list[str]
) -> None:
    """Whatever bucket and user names the schema allows, every label is a Terraform
    identifier, no two blocks of one type share a label across the buckets/ module, every
    user lookup matches exactly its user's name, and the text is the same every time."""
    seen: set[tuple[str, str, str]] = set()
    for name in buckets:
        spec = BucketSpec(
            name=name,
            versioning="enabled",
            overwrite_protection=(BucketRule(principals=tuple(f"user:{u}" for u in users)),),
            replication=tuple(BucketRule(target=t) for t in targets if t != name),
            policy=(
                BucketStatementSpec(
                    "Allow", tuple(f"user:{u}" for u in users), ("oss:GetObject",), (name,)
                ),
            ),
        )
        policy = compile_bucket_policy(spec, "1234567890123456")
        text = bucket_terraform_text(spec, policy, "1234567890123456")
        assert text == bucket_terraform_text(spec, policy, "1234567890123456")
        for block in parse_hcl(text):
            if block["type"] in ("resource", "data"):
                kind, label = block["labels"]
                assert IDENT.fullmatch(label), label
                assert (block["type"], kind, label) not in seen, label
                seen.add((block["type"], kind, label))
            if block["type"] == "data" and block["labels"][0] == "alicloud_ram_users":
                pattern = _value(block["attrs"]["name_regex"])
                assert [u for u in users if re.fullmatch(pattern[1:-1], u)] != []
                assert len([u for u in users if re.search(pattern, u)]) == 1
