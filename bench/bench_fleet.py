"""A fleet of three `permgen serve --redis` instances on one redis-server, backed by the
emulator, under round-robin load on the cached path.

    python bench/bench_fleet.py [--seconds N] [--keys K]

Needs wrk and redis-server (Debian: apt-get install wrk redis-server). One wrk per instance
runs at once (the connections spread round-robin over the three), each cycling through K
distinct keys ({request} values). Reports total requests/s, the worst instance's p99, errors,
and how many AssumeRole calls reached the emulator per distinct key (1 is the goal: one per
key across the fleet).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import ROOT, bench_env, permgen_argv, print_table, token_service_files
from bench_token_service import wrk

LUA = """
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"role": "mobile-uploader", "vars": {"user": "u%%d"}}', n %% %d)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer %s"}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str) -> None:
    for _ in range(200):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                r.read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not start")


def assume_calls(url: str) -> tuple[int, int]:
    """An instance's AssumeRole calls and Redis errors, from its metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assume = int(re.search(r"permgen_assume_role_total (\d+)", metrics).group(1))  # type: ignore[union-attr]
    m = re.search(r"permgen_redis_errors_total\{[^}]*\} (\d+)", metrics)
    return assume, int(m.group(1)) if m else 0


def main() -> int:
    seconds = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 10
    keys = int(sys.argv[sys.argv.index("--keys") + 1]) if "--keys" in sys.argv else 8
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: apt-get install {tool}")
            return 1
    env = bench_env()
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        key, seed, callers = token_service_files(Path(tmp), "{request}")
        rport = free_port()
        procs.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(rport),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                text=True,
            )
        )
        emu = subprocess.Popen(
            [*permgen_argv(), "emulator", "--port", "0", "--seed", str(seed)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        procs.append(emu)
        assert emu.stdout is not None
        endpoint = emu.stdout.readline().strip().split("=", 1)[1]
        senv = {
            **env,
            "PERMGEN_ENDPOINT": endpoint,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-bench-vendor-key",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-vendor-secret",
            "PERMGEN_CACHE_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        urls = []
        for n in range(3):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [
                        *permgen_argv(),
                        "serve",
                        "--spec",
                        str(ROOT / "examples" / "platform.yaml"),
                        "--callers",
                        str(callers),
                        "--port",
                        str(port),
                        "--audit-log",
                        str(Path(tmp) / f"audit{n}.jsonl"),
                        "--redis",
                        f"redis://127.0.0.1:{rport}/0",
                        "--instance-id",
                        f"bench-{n}",
                        "--redis-timeout",
                        os.environ.get("BENCH_REDIS_TIMEOUT", "0.25"),
                    ],
                    env=senv,
                    cwd=ROOT,
                    text=True,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        try:
            for url in urls:
                wait_http(url)
            script = Path(tmp) / "post.lua"
            script.write_text(LUA % (keys, key))

            # warm-up, not measured: each key asked once of every instance, concurrently
            # (the cold path: the fleet's single flight makes it one AssumeRole per key)
            def ask(job: tuple[int, str]) -> None:
                body = f'{{"role": "mobile-uploader", "vars": {{"user": "u{job[0]}"}}}}'
                req = urllib.request.Request(
                    job[1] + "/v1/tokens",
                    data=body.encode(),
                    method="POST",
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=10) as r:
                    r.read()

            with ThreadPoolExecutor(12) as pool:
                list(pool.map(ask, [(k, url) for k in range(keys) for url in urls]))
            cold = sum(assume_calls(url)[0] for url in urls)
            with ThreadPoolExecutor(3) as pool:
                runs = list(pool.map(lambda url: wrk(url, script, seconds), urls))
            assume = sum(assume_calls(url)[0] for url in urls)
            degraded = sum(assume_calls(url)[1] for url in urls)
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                p.wait(timeout=20)
    total = sum(r[0] for r in runs)
    p99 = max(r[1].get("99", 0) for r in runs)
    p50 = max(r[1].get("50", 0) for r in runs)
    errors = sum(r[2] for r in runs)
    rows = [
        (
            f"3 instances, cached path, 3 x wrk 2 threads x 16 connections, {seconds} s, {keys} keys",
            f"{total:,.0f} req/s total; worst p50 {p50:.1f} ms, worst p99 {p99:.1f} ms; {errors} errors",
            "no errors",
            "ok" if not errors else "MISS",
        ),
        (
            "AssumeRole calls per distinct key, cold (each key asked of all 3 at once)",
            f"{cold / keys:.2f} ({cold} for {keys} keys)",
            "1",
            "ok" if cold == keys else "MISS",
        ),
        (
            "AssumeRole calls per distinct key after the load; Redis errors (timeouts)",
            f"{assume / keys:.2f} ({assume} for {keys} keys); {degraded} Redis errors",
            "1 (a lone timeout is not an outage)",
            "ok" if assume == keys else "MISS",
        ),
    ]
    print_table("token service fleet", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
