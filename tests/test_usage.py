"""permgen usage: log parsing (sample lines written to the vendors' documented layouts),
request mapping, principals, right-sizing of the demo spec from generated logs in both
formats, and the proof property."""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.semantics.diff import diff_policies
from permgen.semantics.evaluate import Evaluator, Request
from permgen.spec.compile import compile_file, compile_role
from permgen.spec.load import load_spec
from permgen.spec.types import Conditions
from permgen.tools import gen_usage_logs as gen
from permgen.usage.logs import (
    MAX_LINE,
    Stats,
    parse_actiontrail_event,
    parse_oss_line,
    parse_sls_record,
    read_entries,
)
from permgen.usage.mapping import ANONYMOUS, Principals, Use, map_entry
from permgen.usage.rightsize import Seen, Usage, Window, collect, common_dir, rightsize
from tests.conftest import EXAMPLES, run_cli

ACCOUNT = "1234567890123456"
ARN = f"acs:oss:*:{ACCOUNT}:"

# The vendor's example line (OSS logging, "Log example"), fields in the documented order.
VENDOR = (
    '192.168.0.1 - - [03/Jan/2021:14:59:49 +0800] "GET /example.jpg HTTP/1.0" 200 999131 127 '
    '"http://www.aliyun.com/product/oss" "curl/7.15.5" "examplebucket.oss-cn-hangzhou.aliyuncs.com" '
    '"5FF16B65F05BC932307A3C3C" "true" "16571836914537" "GetObject" "examplebucket" "example.jpg" '
    '999131 88 "-" 302 "16571836914537" - "cdn" "standard" "-" "-" "LTAI" "acs:oss*"'
)


def oss(
    request: str,
    op: str,
    bucket: str,
    key: str,
    *,
    akid: str = "LTAIkey",
    requester: str = "2000000000000001",
    ua: str = "aliyun-sdk-python/2.18.0",
    status: int = 200,
) -> str:
    return (
        f'10.1.2.3 - - [05/Jan/2025:10:00:00 +0000] "{request}" {status} 10 3 "-" "{ua}" '
        f'"{bucket}.oss-cn-hangzhou.aliyuncs.com" "RID" "true" "{requester}" "{op}" "{bucket}" '
        f'"{key}" 10 2 "-" 300 "{ACCOUNT}" - "-" "standard" "-" "-" "{akid}" "acs:oss*"'
    )


# --------------------------------------------------------------------------- parsing


def test_vendor_example_line_parses_to_its_fields() -> None:
    e = parse_oss_line(VENDOR)
    assert (e.ip, e.method, e.path, e.operation) == (
        "192.168.0.1",
        "GET",
        "/example.jpg",
        "GetObject",
    )
    assert (e.bucket, e.key, e.owner, e.access_key, e.status) == (
        "examplebucket",
        "example.jpg",
        "16571836914537",
        "LTAI",
        200,
    )
    assert e.time == 1609657189  # 14:59:49 at +0800 is 06:59:49 UTC
    assert map_entry(e, "x") == (
        Use(
            "oss:GetObject",
            "acs:oss:*:16571836914537:examplebucket/example.jpg",
            (),
            "examplebucket",
            "example.jpg",
        ),
    )


def test_quoted_fields_with_spaces_and_escaped_quotes() -> None:
    line = oss(
        "GET /a/b.txt HTTP/1.1",
        "GetObject",
        "bkt",
        "a%2Fb.txt",
        ua=r"Mozilla/5.0 (X11; \"quoted\" Linux)",
    )
    e = parse_oss_line(line)
    assert (e.bucket, e.key, e.access_key) == ("bkt", "a/b.txt", "LTAIkey")


def test_url_encoded_keys_are_decoded_once() -> None:
    line = oss(
        "GET /dir/Q1%20report%2525.pdf HTTP/1.1", "GetObject", "bkt", "dir%2FQ1%20report%2525.pdf"
    )
    e = parse_oss_line(line)
    assert e.key == "dir/Q1 report%25.pdf"  # %2525 -> %25, never on to %
    (use,) = map_entry(e, ACCOUNT)
    assert use.resource == f"{ARN}bkt/dir/Q1 report%25.pdf"


def test_dash_placeholders_and_anonymous_requests() -> None:
    line = oss(
        "GET /public/logo.png HTTP/1.1",
        "GetObject",
        "bkt",
        "public%2Flogo.png",
        akid="-",
        requester="-",
    )
    e = parse_oss_line(line)
    assert (e.access_key, e.requester) == ("", "")
    assert Principals().of(e) == ANONYMOUS


def test_older_lines_without_the_access_key_field_still_parse() -> None:
    line = oss("GET /k HTTP/1.1", "GetObject", "bkt", "k")
    old = line[: line.index(' - "-" "standard"')]  # ends at UserID, as older files do
    e = parse_oss_line(old)
    assert (e.key, e.access_key, e.owner) == ("k", "", ACCOUNT)


def test_batch_delete_is_evidence_for_the_action_on_the_bucket_only() -> None:
    e = parse_oss_line(oss("POST /?delete HTTP/1.1", "DeleteObjects", "bkt", "-"))
    assert map_entry(e, ACCOUNT) == (Use("oss:DeleteObject", "", bucket="bkt", keys_unknown=True),)
    # the same without an operation name: from the method and the subresource
    e2 = parse_oss_line(oss("POST /?delete HTTP/1.1", "-", "bkt", "-"))
    assert map_entry(e2, ACCOUNT)[0].keys_unknown


@pytest.mark.parametrize(
    ("request_line", "op", "key", "action"),
    [
        ("GET /k?versionId=abc HTTP/1.1", "GetObject", "k", "oss:GetObjectVersion"),
        ("HEAD /k HTTP/1.1", "HeadObject", "k", "oss:GetObject"),
        ("POST /k?uploads HTTP/1.1", "InitiateMultipartUpload", "k", "oss:PutObject"),
        ("PUT /k?partNumber=1&uploadId=U HTTP/1.1", "-", "k", "oss:PutObject"),
        ("DELETE /k?uploadId=U HTTP/1.1", "-", "k", "oss:AbortMultipartUpload"),
        ("GET /k?uploadId=U HTTP/1.1", "-", "k", "oss:ListParts"),
        ("DELETE /k HTTP/1.1", "-", "k", "oss:DeleteObject"),
        ("PUT /k?acl HTTP/1.1", "-", "k", "oss:PutObjectAcl"),
        ("GET /?acl HTTP/1.1", "-", "-", "oss:GetBucketAcl"),
        ("GET /?bucketInfo HTTP/1.1", "GetBucketInfo", "-", "oss:GetBucketInfo"),
        ("GET /?versions HTTP/1.1", "-", "-", "oss:ListObjectVersions"),
    ],
)
def test_operation_and_subresource_mapping(
    request_line: str, op: str, key: str, action: str
) -> None:
    e = parse_oss_line(oss(request_line, op, "bkt", key))
    (use,) = map_entry(e, ACCOUNT)
    assert use.action == action
    assert use.resource == (f"{ARN}bkt/k" if key == "k" else f"{ARN}bkt")


def test_listing_carries_prefix_and_delimiter_context_decoded_once() -> None:
    e = parse_oss_line(
        oss("GET /?prefix=a%2Fb%2525%2F&delimiter=%2F HTTP/1.1", "GetBucket", "bkt", "-")
    )
    (use,) = map_entry(e, ACCOUNT)
    assert use.action == "oss:ListObjects"
    assert dict(use.context) == {"oss:Prefix": "a/b%25/", "oss:Delimiter": "/"}


def test_unknown_requests_are_not_guessed() -> None:
    e = parse_oss_line(oss("PATCH /k HTTP/1.1", "-", "bkt", "k"))
    assert map_entry(e, ACCOUNT) == ()


def test_sls_record_fields() -> None:
    rec = json.loads(
        gen.sls_record(gen.Req(1_736_000_000, "STS.x", "GET", "bkt", "a b/c", vpc="vpc-1"))
    )
    e = parse_sls_record(rec)
    assert (e.time, e.key, e.vpc, e.tls, e.access_key) == (
        1_736_000_000,
        "a b/c",
        "vpc-1",
        True,
        "STS.x",
    )
    rec.update(access_id="-", requester_id="-", http_type="http", vpc_id="-")
    e = parse_sls_record(rec)
    assert (e.access_key, e.vpc, e.tls) == ("", "", False)
    with pytest.raises(ValueError, match="oss_access_log"):
        parse_sls_record({"__topic__": "oss_batch_delete_log", "__time__": 1})


def test_sts_keys_map_to_roles_through_assume_role_events() -> None:
    (event,) = [
        e for e in gen.actiontrail_events() if e["requestParameters"]["RoleArn"].endswith("EtlRole")
    ]  # type: ignore[index]
    p = Principals()
    p.learn(parse_actiontrail_event(event))
    sts_line = parse_oss_line(oss("GET /k HTTP/1.1", "GetObject", "bkt", "k", akid="STS.etl0001"))
    assert p.of(sts_line) == "role:EtlRole"
    other = parse_oss_line(oss("GET /k HTTP/1.1", "GetObject", "bkt", "k", akid="STS.other"))
    assert p.of(other) == "unknown:STS.other"
    assert Principals({"STS.other": "role:R"}).of(other) == "role:R"


def test_actiontrail_event_names_its_own_principal() -> None:
    event = {
        "eventName": "GetBucketInfo",
        "serviceName": "Oss",
        "eventTime": "2025-01-02T03:04:05Z",
        "userIdentity": {
            "type": "assumed-role",
            "arn": f"acs:ram::{ACCOUNT}:assumed-role/Auditor/s1",
            "accessKeyId": "STS.q",
        },
        "requestParameters": {"BucketName": "corp-data"},
    }
    e = parse_actiontrail_event({"event": json.dumps(event)})  # an SLS export wraps it
    assert Principals().of(e) == "role:Auditor"
    assert map_entry(e, ACCOUNT) == (Use("oss:GetBucketInfo", f"{ARN}corp-data", (), "corp-data"),)


def test_bad_and_overlong_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    good = oss("GET /k HTTP/1.1", "GetObject", "bkt", "k")
    path = tmp_path / "x.log.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(
            good + "\n" + "garbage line\n" + good[:40] + "x" * (MAX_LINE + 10) + "\n" + good + "\n"
        )
    stats = Stats()
    entries = list(read_entries(path, stats))
    assert len(entries) == 2
    assert (stats.lines, stats.malformed, stats.too_long) == (4, 1, 1)
    assert stats.first_bad.startswith(f"{path}:2:")


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module", params=["oss", "sls"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    d = tmp_path_factory.mktemp(f"demo-{request.param}")
    shutil.copy(EXAMPLES / "platform.yaml", d / "platform.yaml")
    shutil.copytree(EXAMPLES / "templates", d / "templates")
    files = gen.write_demo(d / "logs", 5000, request.param)
    files["spec"] = d / "platform.yaml"
    return files


def _usage(demo: dict[str, Path], **kw: object) -> Usage:
    keys = json.loads(demo["keys"].read_text())
    return collect(
        [str(demo["log"]), str(demo["actiontrail"])], keys=keys["keys"], account=ACCOUNT, **kw
    )  # type: ignore[arg-type]


def test_demo_roles_are_right_sized(demo: dict[str, Path]) -> None:
    spec = load_spec(demo["spec"])
    usage = _usage(demo)
    report = rightsize(spec, usage, groups=gen.GROUPS, min_days=14)
    by = {r.name: r for r in report.roles}
    assert usage.stats.malformed == 0 and usage.unmapped == 0
    ar = by["analytics-reader"]
    assert ar.status == "narrowed"
    assert ar.proposed is not None and ar.proposed.grants[0].prefixes == (
        "exports/analytics/daily/",
    )
    assert any(t.name == "corp-data/exports/shared/" and t.count == 0 for t in ar.prefixes)
    assert by["ingest-writer"].proposed.grants[0].prefixes == ("ingest/raw/",)  # type: ignore[union-attr]
    rot = by["export-rotator"]
    assert rot.batch_deletes > 0
    assert rot.proposed is not None
    assert rot.proposed.grants == spec.roles["export-rotator"].grants  # batch deletes: no narrowing
    assert dict(rot.proposed.options) == {
        "delete": True,
        "read": True,
        "versions": False,
        "browse": False,
    }
    browser = by["console-browser"]
    assert browser.proposed is not None and dict(browser.proposed.options)["browse"] is True
    assert browser.proposed.grants[0].prefixes == ("monthly/2025-01/",)
    assert by["mobile-uploader"].status == "unchanged"  # {user} prefixes are never narrowed
    auditor = by["bucket-auditor"]
    assert auditor.proposed is not None and [g.bucket for g in auditor.proposed.grants] == [
        "corp-data"
    ]
    # anonymous requests and the token vendor's AssumeRole calls belong to no role
    assert ANONYMOUS in usage.contexts


def test_demo_proposal_written_loads_and_is_a_subset(demo: dict[str, Path]) -> None:
    out = demo["spec"].parent / "proposed.yaml"
    result = run_cli(
        "usage", "--spec", str(demo["spec"]), "--logs", str(demo["log"]), "--logs", str(demo["actiontrail"]),
        "--keys", str(demo["keys"]), "--format", "json", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {r["role"]: r["status"] for r in data["roles"]}["analytics-reader"] == "narrowed"
    before = compile_file(demo["spec"])
    after = compile_file(out)
    for name, role in before.roles.items():
        diff = diff_policies([role.policy], [after.roles[name].policy])
        assert not diff.new_access, name
    assert not diff_policies(
        [before.roles["analytics-reader"].policy], [after.roles["analytics-reader"].policy]
    ).equivalent


def test_markdown_review_names_unused_grants(demo: dict[str, Path]) -> None:
    result = run_cli(
        "usage", "--spec", str(demo["spec"]), "--logs", str(demo["log"]), "--logs", str(demo["actiontrail"]),
        "--keys", str(demo["keys"]), "--format", "markdown",
    )  # fmt: skip
    assert result.exit_code == 0
    assert "| `corp-data/exports/shared/` | **unused** | never |" in result.output
    assert "### `analytics-reader`: narrower spec proposed" in result.output


def test_window_and_min_days(demo: dict[str, Path]) -> None:
    spec = load_spec(demo["spec"])
    # the last five days only: less than --min-days 14 -> no proposal at all
    report = rightsize(
        spec,
        _usage(demo, window=Window(since=gen.START + 25 * 86_400)),
        groups=gen.GROUPS,
        min_days=14,
    )
    assert {r.status for r in report.roles} <= {"insufficient", "unused"}
    assert report.usage.outside > 0
    assert all(r.proposed is None for r in report.roles)


def test_parallel_collection_matches_one_process(demo: dict[str, Path]) -> None:
    one = _usage(demo)
    two = _usage(demo, jobs=2)
    assert demo["log"].stat().st_size > 1 << 20  # split into two ranges
    assert {k: v.count for k, v in one.uses.items()} == {k: v.count for k, v in two.uses.items()}
    assert one.stats.entries == two.stats.entries


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(oss("GET /k HTTP/1.1", "GetObject", "bkt", "k") + "\n")
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: {LTAIkey: alice}\n")
    r = run_cli(
        "usage", "--spec", str(EXAMPLES / "platform.yaml"), "--logs", str(log), "--keys", str(keys)
    )
    assert r.exit_code == 2 and "keys.LTAIkey: expected 'user:NAME' or 'role:NAME'" in r.output
    r = run_cli(
        "usage",
        "--spec",
        str(EXAMPLES / "platform.yaml"),
        "--logs",
        str(log),
        "--since",
        "yesterday",
    )
    assert r.exit_code == 2 and "--since" in r.output
    out = tmp_path / "p.yaml"
    r = run_cli(
        "usage", "--spec", str(tmp_path / "missing.yaml"), "--logs", str(log), "--out", str(out)
    )
    assert r.exit_code == 2 and not out.exists()


def test_common_dir_never_narrower_than_used() -> None:
    assert common_dir(["a/b/c.txt", "a/b/d/e.txt"], "a/") == "a/b/"
    assert common_dir(["a/b/c.txt"], "a/") == "a/b/"
    assert common_dir(["ingest/raw-1", "ingest/raw-2"], "ingest/raw-") == "ingest/raw-"
    assert common_dir(["x.txt", "y/z"], "") == ""


# --------------------------------------------------------------------------- the proof property

_SEGMENTS = st.sampled_from(["a", "b", "2025", "x y", "%", "q"])
_KEYS = st.lists(_SEGMENTS, min_size=1, max_size=4).map("/".join)
_ACTIONS = st.sampled_from(
    ["oss:GetObject", "oss:PutObject", "oss:DeleteObject", "oss:ListObjects"]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(_ACTIONS, st.sampled_from(["ingest/", "exports/"]), _KEYS),
        min_size=1,
        max_size=12,
    )
)
def test_proposal_allows_every_used_request_and_nothing_new(
    uses: list[tuple[str, str, str]],
) -> None:
    spec = load_spec(EXAMPLES / "platform.yaml")
    base = spec.roles["export-rotator"]
    role = replace(
        base,
        grants=(replace(base.grants[0], prefixes=("ingest/", "exports/")),),
        attach=("user:u",),
    )
    spec = replace(spec, roles={"r": replace(role, name="r")})
    usage = Usage()
    for action, prefix, key in uses:
        full = prefix + key
        if action == "oss:ListObjects":
            use = Use(action, f"{ARN}corp-data", (("oss:Prefix", full),), "corp-data", full)
        else:
            use = Use(action, f"{ARN}corp-data/{full}", (), "corp-data", full)
        usage.uses[("user:u", use)] = Seen(1, gen.START, gen.START + 20 * 86_400)
    usage.first, usage.last = gen.START, gen.START + 20 * 86_400
    (report,) = rightsize(spec, usage, min_days=14).roles
    assert report.status in ("narrowed", "unchanged")
    proposed = report.proposed or spec.roles["r"]
    current = compile_role(spec.roles["r"], templates_dir=spec.templates_dir)
    new = compile_role(proposed, templates_dir=spec.templates_dir)
    assert not diff_policies([current.policy], [new.policy]).new_access
    check = Evaluator(
        [
            compile_role(
                replace(proposed, conditions=Conditions()), templates_dir=spec.templates_dir
            ).policy
        ]
    )
    for (_, use), _seen in usage.uses.items():
        assert check.allows(Request(use.action, use.resource, dict(use.context))), use


@pytest.mark.parametrize("parts", [2, 3, 7, 13])
def test_byte_ranges_read_every_line_once(tmp_path: Path, parts: int) -> None:
    from permgen.usage.rightsize import _read_range

    lines = [oss(f"GET /k{i} HTTP/1.1", "GetObject", "bkt", f"k{i}") for i in range(50)]
    lines.insert(10, "x" * (MAX_LINE + 5000))  # an over-long line across a split point
    path = tmp_path / "r.log"
    path.write_text("\n".join(lines) + "\n")
    size = path.stat().st_size
    step = -(-size // parts)
    stats = Stats()
    keys = [
        e.key
        for a in range(0, size, step)
        for e in _read_range(str(path), a, min(size, a + step), "oss", stats)
    ]
    assert sorted(keys) == sorted(f"k{i}" for i in range(50))
    assert (stats.too_long, stats.malformed) == (1, 0)


def test_principals_match_roles_without_case_and_through_groups() -> None:
    from permgen.usage.rightsize import _matches_principal

    assert _matches_principal("role:etlrole", ["role:EtlRole"], {})
    assert _matches_principal("user:Alice", ["group:Analysts"], {"analysts": ["alice"]})
    assert not _matches_principal("user:bob", ["group:analysts"], {"analysts": ["alice"]})
    assert not _matches_principal(ANONYMOUS, ["user:anonymous"], {})
