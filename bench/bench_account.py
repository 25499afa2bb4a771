"""Account-side benchmarks on the emulator: signed requests per second it answers, the real
SDK's round trip, and a whole-process `permgen plan` over 100 roles and 300 principals.

    python bench/bench_account.py
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import ROOT, bench_env, permgen_argv, print_table, summary, time_process, verdict


def start_emulator(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*permgen_argv(), "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=bench_env(),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip().split("=", 1)[1]
    proc.stdout.readline()
    proc.stdout.readline()
    return proc, url


def signed_paths(n: int) -> list[str]:
    from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET
    from permgen.emulator.signing import signature, string_to_sign

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = []
    for _ in range(n):
        params = {
            "Action": "GetPolicy", "Version": "2015-05-01", "Format": "JSON", "AccessKeyId": ADMIN_KEY_ID,
            "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureType": "",
            "SignatureNonce": uuid.uuid4().hex, "Timestamp": stamp, "RegionId": "cn-hangzhou",
            "PolicyName": "AliyunOSSReadOnlyAccess", "PolicyType": "System",
        }  # fmt: skip
        params["Signature"] = signature(string_to_sign("POST", params), ADMIN_KEY_SECRET)
        out.append("/?" + urlencode(params))
    return out


def throughput(url: str, threads: int = 4, per_thread: int = 1500) -> tuple[float, int]:
    host = urlsplit(url)
    batches = [signed_paths(per_thread) for _ in range(threads)]
    errors = [0]

    def worker(paths: list[str]) -> None:
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
        for path in paths:
            conn.request("POST", path, body=b"")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors[0] += 1
        conn.close()

    workers = [threading.Thread(target=worker, args=(b,)) for b in batches]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    return threads * per_thread / elapsed, errors[0]


def sdk_round_trip(url: str) -> float:
    from permgen.account.sdk import SdkRamClient
    from permgen.account.types import AccessKey, ClientConfig, Secret
    from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET

    ram = SdkRamClient(
        AccessKey(ADMIN_KEY_ID, Secret(ADMIN_KEY_SECRET)), ClientConfig(endpoint=url)
    )
    ram.get_policy("AliyunOSSReadOnlyAccess", "System")
    times = []
    for _ in range(200):
        start = time.perf_counter()
        ram.get_policy("AliyunOSSReadOnlyAccess", "System")
        times.append(time.perf_counter() - start)
    return summary(times)[0]


def plan_fixture(tmp: Path) -> tuple[Path, Path]:
    spec = [
        "version: 1",
        'defaults: {account: "1234567890123456", conditions: {secure_transport: true}}',
        "roles:",
    ]
    users = []
    for i in range(100):
        principals = [f"user:user-{i:03d}", f"user:user-{100 + i:03d}", f"user:user-{200 + i:03d}"]
        users += [p.split(":")[1] for p in principals]
        spec += [
            f"  role-{i:03d}:",
            f"    template: {['reader', 'writer', 'temporary-uploader'][i % 3]}",
            f"    grants: [{{bucket: bucket-{i % 9}, prefixes: [team-{i}/]}}]",
            f"    attach: {principals}",
        ]
    seed = ["users:"] + [f"  - {{name: {u}}}" for u in users]
    (tmp / "spec.yaml").write_text("\n".join(spec) + "\n")
    (tmp / "seed.yaml").write_text("\n".join(seed) + "\n")
    return tmp / "spec.yaml", tmp / "seed.yaml"


def main() -> int:
    rows = []
    proc, url = start_emulator()
    try:
        rate, errors = throughput(url)
        rows.append(
            (
                "emulator: signed GetPolicy requests, 4 keep-alive clients (separate process)",
                f"{rate:,.0f} req/s, {errors} errors",
                ">= 1,000 req/s",
                "ok" if rate >= 1000 and not errors else "UNDER",
            )
        )
        rows.append(
            (
                "real SDK round trip (GetPolicy), median of 200",
                f"{sdk_round_trip(url) * 1000:.2f} ms",
                "",
                "",
            )
        )
    finally:
        proc.terminate()
        proc.wait()
    with tempfile.TemporaryDirectory() as tmp:
        spec, seed = plan_fixture(Path(tmp))
        proc, url = start_emulator("--seed", str(seed))
        try:
            env = {**os.environ, "PERMGEN_ENDPOINT": url}
            from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET

            env.update(
                ALIBABA_CLOUD_ACCESS_KEY_ID=ADMIN_KEY_ID,
                ALIBABA_CLOUD_ACCESS_KEY_SECRET=ADMIN_KEY_SECRET,
            )
            os.environ.update(env)
            med, _p90, _ = summary(
                time_process([*permgen_argv(), "plan", str(spec)], runs=3, warmup=1)
            )
            rows.append(
                (
                    "`permgen plan` of 100 roles / 300 principals, nothing applied yet",
                    f"median {med:.2f} s",
                    "<= 5 s",
                    verdict(med, 5.0),
                )
            )
            subprocess.run(
                [*permgen_argv(), "apply", str(spec), "--yes"],
                env=bench_env(),
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            med, _p90, _ = summary(
                time_process(
                    [*permgen_argv(), "plan", str(spec), "--detailed-exitcode"], runs=5, warmup=1
                )
            )
            rows.append(
                (
                    "`permgen plan` of 100 roles / 300 principals, in sync",
                    f"median {med:.2f} s",
                    "<= 5 s",
                    verdict(med, 5.0),
                )
            )
        finally:
            proc.terminate()
            proc.wait()
    print_table("account (emulator)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
