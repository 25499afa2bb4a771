"""The audit at scale: a synthetic account of 5,000 users, 500 groups, 500 roles, 2,000 custom
policies and 300 buckets (bench/audit_fixture.py), and side by side in the same run
cloudsplaining scanning the same account as an AWS account-authorization-details file.

Each side runs as a process of its own and is measured the same way: wall-clock seconds of the
whole process and its peak resident memory (``os.wait4``'s rusage of that one child).

- permgen: ``permgen audit --snapshot FILE --format json`` (the exact audit: which principal
  can destroy which data for good), its report written to a file; with ``--jobs 1`` and with
  the default (one worker per CPU), whose reports must be byte-identical. The comparison
  with cloudsplaining uses the default.
- cloudsplaining: ``cloudsplaining scan --input-file ... --skip-open-report`` (its default
  scan: flags risky actions; it has no bucket settings, so it cannot tell a recoverable delete
  from an irrecoverable one).

    python bench/bench_audit.py                 # both, full size
    python bench/bench_audit.py --scale 0.1     # both, a tenth of every count (a quick look)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import ROOT, bench_env, print_table, verdict
from audit_fixture import write

TARGET_S = 30.0
SIZES = {"users": 5000, "groups": 500, "roles": 500, "policies": 2000, "buckets": 300}


def measure(
    argv: list[str], cwd: Path, stdout: Path | None = None
) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS in MiB, exit code, stderr's tail) of one process (its standard
    output to ``stdout``, or discarded)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err, open(stdout or os.devnull, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=bench_env(), stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        err.seek(0)
        tail = err.read().decode(errors="replace")[-600:]
    return elapsed, usage.ru_maxrss / 1024, proc.returncode, tail


def permgen_available() -> bool:
    try:
        import permgen.account.audit  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()

    sizes = {k: max(1, round(v * args.scale)) for k, v in SIZES.items()}
    label = ", ".join(f"{v:,} {k}" for k, v in sizes.items())
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="permgen-bench-audit-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        snapshot, details = write(work, **sizes)
        rows.append(
            (
                f"generate the account ({label})",
                f"{time.perf_counter() - start:.1f} s; snapshot {snapshot.stat().st_size / 1e6:.1f} MB, "
                f"authorization details {details.stat().st_size / 1e6:.1f} MB",
                "",
                "",
            )
        )

        # Every process is started while this one is small, and the reports are read only
        # after all ran: a child's peak RSS counts this process's memory at its start (the
        # child shares it until it execs).
        runs: list[tuple[int, float, float, Path]] = []
        if permgen_available():
            from permgen._internal.parallel import default_jobs

            argv = [sys.executable, "-m", "permgen", "audit", "--snapshot", str(snapshot)]
            # one process (its peak RSS is the audit's memory), then the default: one worker
            # per CPU (peak RSS: the largest of the parent and its workers, not their sum)
            for jobs in dict.fromkeys((1, default_jobs())):
                out = work / f"report-{jobs}.json"
                command = [*argv, "--format", "json", "--jobs", str(jobs)]
                elapsed, rss, code, tail = measure(command, ROOT, stdout=out)
                if code != 0:
                    raise SystemExit(f"permgen audit failed ({code}): {tail}")
                runs.append((jobs, elapsed, rss, out))
        exe = Path(sys.executable).with_name("cloudsplaining")
        found = str(exe) if exe.exists() else shutil.which("cloudsplaining")
        scan = None
        if found is not None:
            (work / "cs").mkdir()
            argv = [found, "scan", "--input-file", str(details), "--output", "cs"]
            elapsed, rss, code, tail = measure([*argv, "--skip-open-report"], work)
            if code != 0:
                raise SystemExit(f"cloudsplaining failed ({code}): {tail}")
            scan = (elapsed, rss)

        permgen_s = None
        digests = set()
        for jobs, elapsed, rss, out in runs:
            digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
            findings = len(json.loads(out.read_bytes())["findings"])
            permgen_s = elapsed
            rows.append(
                (
                    f"permgen audit --snapshot FILE --format json --jobs {jobs}, whole process",
                    f"{elapsed:.1f} s, peak RSS {rss:.0f} MiB, {findings:,} findings",
                    f"<= {TARGET_S:.0f} s",
                    verdict(elapsed, TARGET_S),
                )
            )
        if len(digests) > 1:
            raise SystemExit("permgen audit: the reports with and without workers differ")
        if not runs:
            print("permgen audit: not available in this tree")
            rows.append(("permgen audit", "not available in this tree", f"<= {TARGET_S:.0f} s", ""))

        if scan is None:
            rows.append(
                ("cloudsplaining scan", "not installed (pip install cloudsplaining)", "", "")
            )
        else:
            elapsed, rss = scan
            results = json.loads(
                (work / "cs" / f"iam-findings-{details.stem}.json").read_text(encoding="utf-8")
            )
            flagged = sum(len(results.get(k, {})) for k in ("users", "groups", "roles"))
            rows.append(
                (
                    "cloudsplaining scan of the same account, whole process",
                    f"{elapsed:.1f} s, peak RSS {rss:.0f} MiB, {flagged:,} principals in its results",
                    "",
                    "",
                )
            )
            if permgen_s is not None:
                rows.append(
                    (
                        "permgen audit no slower than the cloudsplaining scan",
                        f"{permgen_s:.1f} s vs {elapsed:.1f} s",
                        "<= 1.0x",
                        verdict(permgen_s, elapsed),
                    )
                )
    print_table("Audit at scale", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
