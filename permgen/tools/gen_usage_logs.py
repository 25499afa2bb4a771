"""Generate access logs of the demo spec (examples/platform.yaml) for ``permgen usage``:
OSS built-in logging lines, SLS ``oss_access_log`` JSON lines, ActionTrail AssumeRole
events for the STS keys, and the ``--keys`` file. Used by tests/test_usage.py and
bench/bench_usage.py.

    python -m permgen.tools.gen_usage_logs DIR [--lines N] [--format oss|sls]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

OWNER = "1234567890123456"
START = 1_735_689_600  # 2025-01-01T00:00:00Z
DAYS = 30

KEYS = {
    "LTAI-example-analytics-bot": "user:analytics-bot",
    "LTAI-example-alice": "user:alice",
    "LTAI-example-rotator-bot": "user:rotator-bot",
    "LTAI-example-bob": "user:bob",
    "LTAI-example-carol": "user:carol",
}
GROUPS = {"analysts": ["alice"], "finance": ["bob"], "auditors": ["carol"]}
#: STS keys handed out by AssumeRole (in the ActionTrail file), and their roles
STS = {"STS.etl0001": "EtlRole", "STS.mobile01": "oss-uploader", "STS.mobile02": "oss-uploader"}


@dataclass(frozen=True)
class Req:
    time: int
    key_id: str  # "" anonymous
    method: str
    bucket: str
    key: str  # decoded
    query: str = ""
    operation: str = "-"
    status: int = 200
    ip: str = "10.0.0.5"
    vpc: str = "vpc-bp1corpdata01"
    https: bool = True


def _templates() -> list[tuple[int, str, str, str, str, str, str]]:
    """(weight, key id, method, bucket, key, query, operation)"""
    return [
        (
            30,
            "LTAI-example-analytics-bot",
            "GET",
            "corp-data",
            "exports/analytics/daily/{n}.csv",
            "",
            "GetObject",
        ),
        (
            5,
            "LTAI-example-alice",
            "GET",
            "corp-data",
            "exports/analytics/daily/{n} copy.csv",
            "",
            "GetObject",
        ),
        (
            3,
            "LTAI-example-analytics-bot",
            "GET",
            "corp-data",
            "",
            "prefix=exports%2Fanalytics%2Fdaily%2F",
            "GetBucket",
        ),
        (20, "STS.etl0001", "PUT", "corp-data", "ingest/raw/{n}.json", "", "PutObject"),
        (
            2,
            "STS.etl0001",
            "POST",
            "corp-data",
            "ingest/raw/big-{n}.bin",
            "uploads",
            "InitiateMultipartUpload",
        ),
        (
            2,
            "STS.etl0001",
            "PUT",
            "corp-data",
            "ingest/raw/big-{n}.bin",
            "partNumber=1&uploadId=u{n}",
            "UploadPart",
        ),
        (5, "STS.etl0001", "GET", "corp-data", "ingest/raw/{n}.json", "", "GetObject"),
        (
            10,
            "LTAI-example-rotator-bot",
            "PUT",
            "corp-data",
            "exports/analytics/daily/{n}.csv",
            "",
            "PutObject",
        ),
        (3, "LTAI-example-rotator-bot", "POST", "corp-data", "", "delete", "DeleteObjects"),
        (2, "LTAI-example-rotator-bot", "GET", "corp-data", "exports/shared/{n}.csv", "", "-"),
        (2, "LTAI-example-bob", "GET", "", "", "", "GetService"),
        (2, "LTAI-example-bob", "GET", "corp-reports", "", "bucketInfo", "GetBucketInfo"),
        (2, "LTAI-example-bob", "GET", "corp-reports", "", "prefix=&delimiter=%2F", "GetBucket"),
        (
            5,
            "LTAI-example-bob",
            "GET",
            "corp-reports",
            "monthly/2025-01/Q1 report {n}.pdf",
            "",
            "GetObject",
        ),
        (8, "STS.mobile01", "PUT", "user-uploads", "incoming/u{n}/photo.jpg", "", "PutObject"),
        (4, "STS.mobile02", "PUT", "user-uploads", "incoming/u{n}/photo%.jpg", "", "PutObject"),
        (2, "LTAI-example-carol", "GET", "corp-data", "", "bucketInfo", "GetBucketInfo"),
        (1, "LTAI-example-carol", "GET", "corp-data", "", "acl", "GetBucketAcl"),
        (2, "", "GET", "user-uploads", "public/logo.png", "", "GetObject"),
    ]


def requests(
    n: int, *, seed: int = 7, start: int = START, days: int = DAYS, spread: int = 50
) -> Iterator[Req]:
    """``n`` requests of the demo's principals spread over ``days`` days (time-ordered)."""
    rng = random.Random(seed)
    rows = _templates()
    weights = [r[0] for r in rows]
    span = days * 86_400
    for i in range(n):
        _, key_id, method, bucket, key, query, op = rng.choices(rows, weights)[0]
        number = rng.randrange(spread)
        vpc = (
            ""
            if key_id.startswith("STS.mobile") or key_id == "LTAI-example-rotator-bot"
            else "vpc-bp1corpdata01"
        )
        ip = (
            "203.0.113.7"
            if key_id == "LTAI-example-rotator-bot"
            else ("198.51.100.9" if not vpc else "10.0.0.5")
        )
        yield Req(
            time=start + (i * span) // max(n, 1),
            key_id=key_id,
            method=method,
            bucket=bucket,
            key=key.format(n=number),
            query=query,
            operation=op,
            ip=ip,
            vpc=vpc,
        )


def _clf(t: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))


def oss_line(r: Req) -> str:
    """One line of OSS built-in logging (the vendor's field order)."""
    path = "/" + quote(r.key, safe="/") if r.key else "/"
    target = path + ("?" + r.query if r.query else "")
    host = (
        f"{r.bucket}.oss-cn-hangzhou.aliyuncs.com" if r.bucket else "oss-cn-hangzhou.aliyuncs.com"
    )
    requester = "-" if not r.key_id else "2000000000000001"
    return (
        f'{r.ip} - - [{_clf(r.time)}] "{r.method} {target} HTTP/1.1" {r.status} 120 12 "-" '
        f'"aliyun-sdk-python/2.18.0 (Linux)" "{host}" "5FF16B65F05BC932307A3C3C" "true" '
        f'"{requester}" "{r.operation}" "{r.bucket or "-"}" "{quote(r.key, safe="") or "-"}" 120 8 "-" 302 '
        f'"{OWNER}" - "-" "standard" "-" "-" "{r.key_id or "-"}" "acs:oss:*:{OWNER}:{r.bucket}"'
    )


def sls_record(r: Req) -> str:
    """One ``oss_access_log`` record of a Simple Log Service export (JSON line)."""
    path = "/" + quote(r.key, safe="/") if r.key else "/"
    return json.dumps(
        {
            "__topic__": "oss_access_log",
            "__time__": r.time,
            "time": _clf(r.time)[:20],
            "access_id": r.key_id or "-",
            "owner_id": OWNER,
            "bucket": r.bucket or "-",
            "object": quote(r.key, safe="") or "-",
            "operation": r.operation,
            "request_uri": path + ("?" + r.query if r.query else ""),
            "http_method": r.method,
            "http_status": r.status,
            "http_type": "https" if r.https else "http",
            "client_ip": r.ip,
            "vpc_id": r.vpc or "-",
            "requester_id": "2000000000000001" if r.key_id else "-",
            "host": f"{r.bucket}.oss-cn-hangzhou.aliyuncs.com",
        }
    )


def actiontrail_events(start: int = START) -> list[dict[str, object]]:
    """The AssumeRole events that handed out the STS keys of the demo."""
    out: list[dict[str, object]] = []
    for i, (key, role) in enumerate(sorted(STS.items())):
        out.append(
            {
                "eventId": f"ev-{i}",
                "eventName": "AssumeRole",
                "eventSource": "sts.aliyuncs.com",
                "serviceName": "Sts",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start - 60)),
                "eventType": "ApiCall",
                "sourceIpAddress": "10.0.0.9",
                "userIdentity": {
                    "type": "ram-user",
                    "userName": "token-vendor",
                    "accessKeyId": "LTAI-example-vendor",
                    "accountId": OWNER,
                },
                "requestParameters": {
                    "RoleArn": f"acs:ram::{OWNER}:role/{role}",
                    "RoleSessionName": f"s{i}",
                },
                "responseElements": {
                    "Credentials": {"AccessKeyId": key, "Expiration": "2025-01-01T01:00:00Z"}
                },
            }
        )
    return out


def write_demo(directory: Path, lines: int, fmt: str, *, seed: int = 7) -> dict[str, Path]:
    """The log file, the ActionTrail file and the keys file of the demo, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / ("oss.log" if fmt == "oss" else "sls.jsonl")
    render = oss_line if fmt == "oss" else sls_record
    with open(log, "w", encoding="utf-8") as fh:
        batch: list[str] = []
        for r in requests(lines, seed=seed):
            batch.append(render(r))
            if len(batch) >= 10_000:
                fh.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            fh.write("\n".join(batch) + "\n")
    trail = directory / "actiontrail.jsonl"
    trail.write_text(
        "\n".join(json.dumps(e) for e in actiontrail_events()) + "\n", encoding="utf-8"
    )
    keys = directory / "keys.yaml"
    keys.write_text(json.dumps({"keys": KEYS, "groups": GROUPS}, indent=1) + "\n", encoding="utf-8")
    return {"log": log, "actiontrail": trail, "keys": keys}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory")
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--format", choices=["oss", "sls"], default="oss")
    args = ap.parse_args(argv)
    for name, path in write_demo(Path(args.directory), args.lines, args.format).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
