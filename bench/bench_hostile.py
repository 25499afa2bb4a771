"""Hostile wildcard patterns (``*a*a*...*b``): the worst case of each command that matches
globs, which used to backtrack for minutes. Targets: every case in well under a second,
and a refused diff within a few seconds.

    python bench/bench_hostile.py
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import ROOT, bench_env, permgen_argv, print_table, summary, time_call, verdict

TEXT_60 = "corp-data/" + "a" * 50  # 60 characters, no "b"


def _policy(resource: str, action: str = "oss:GetObject") -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": [action], "Resource": [resource]}],
    }


def _hostile(groups: int, *, arn: bool = True) -> str:
    return ("acs:oss:*:*:" if arn else "") + "corp-data/" + "*a" * groups + "*b"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> int:
    from permgen.policy.model import parse_policy
    from permgen.policy.wildcard import match_cost
    from permgen.semantics import Evaluator, Request, diff_policies
    from permgen.semantics.diff import DiffTooLarge

    rows: list[tuple[str, str, str, str]] = []

    # the matcher alone: work and time grow with pattern x text, not exponentially. Where
    # the text ends in "b" the last piece matches and the middle ones are searched: "*a"
    # groups one "a" short of the text's, and near misses ("aaaaaaaaac" never occurs)
    cases = [
        ("*a" * 10 + "*b", TEXT_60, "10 '*a' groups vs the 60-character resource"),
        ("*a" * 31 + "*b", "a" * 30 + "x" * 600 + "b", "31 '*a' groups vs 30 'a', 600 'x', 'b'"),
        ("*aaaaaaaaac" * 10 + "*b", "a" * 600 + "b", "10 '*aaaaaaaaac' vs 600 'a' + 'b'"),
        ("*aaaaaaaaac" * 100 + "*b", "a" * 6000 + "b", "100 '*aaaaaaaaac' vs 6,000 'a' + 'b'"),
    ]
    for pattern, text, label in cases:
        _, cost = match_cost(pattern, text)
        med, _, _ = summary(time_call(lambda p=pattern, t=text: match_cost(p, t), runs=20))
        rows.append(
            (
                f"match: {label} (no match)",
                f"{med * 1e6:.1f} us, {cost:,} comparisons (bound {len(pattern) * (len(text) + 1):,})",
                "<= 10 ms",
                verdict(med, 0.01),
            )
        )

    # explain: one request against a hostile Resource pattern (library and whole process)
    for groups in (10, 30):
        ev = Evaluator([parse_policy(_policy(_hostile(groups, arn=False)))])
        req = Request("oss:GetObject", TEXT_60)
        med, _, _ = summary(time_call(lambda ev=ev, req=req: ev.decide(req), runs=200))
        rows.append(
            (
                f"explain: {groups} '*a' groups vs a 60-character resource (library)",
                f"{med * 1e6:.1f} us",
                "<= 1 ms",
                verdict(med, 0.001),
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "p10.json").write_text(json.dumps(_policy(_hostile(10))))
        (d / "base.json").write_text(json.dumps(_policy("acs:oss:*:*:corp-data/x")))
        (d / "p30.json").write_text(json.dumps(_policy(_hostile(30))))
        argv = [*permgen_argv(), "explain", str(d / "p10.json")]
        argv += ["--action", "oss:GetObject", "--resource", "acs:oss:*:1234567890123456:" + TEXT_60]
        med, _, _ = summary(_time(argv, runs=5))
        rows.append(
            (
                "`permgen explain`, 10 groups, 60-character resource (whole process)",
                _ms(med),
                "<= 1 s",
                verdict(med, 1),
            )
        )
        argv = [*permgen_argv(), "diff", str(d / "base.json"), str(d / "p30.json")]
        med, _, _ = summary(_time(argv, runs=5))
        rows.append(
            ("`permgen diff`, 30 groups (whole process)", _ms(med), "<= 1 s", verdict(med, 1))
        )
        med, _ = _review(d)
        rows.append(
            (
                "`permgen review`, a user template with 30 groups (whole process)",
                _ms(med),
                "<= 5 s",
                verdict(med, 5),
            )
        )

    # diff (library): the family that took 0.4 -> 64 s from 22 to 30 groups
    old = parse_policy(_policy("acs:oss:*:*:corp-data/x"))
    for groups in (22, 30, 100):
        new = parse_policy(_policy(_hostile(groups)))
        med, _, _ = summary(time_call(lambda new=new: diff_policies([old], [new]), runs=10))
        rows.append(
            (f"diff: {groups} '*a' groups (library)", _ms(med), "<= 100 ms", verdict(med, 0.1))
        )

    # the diff's budget: the slowest refusal found (many overlapping multi-star patterns)
    worst = 0.0
    for per, groups in ((26, 1), (22, 20), (18, 30), (16, 40)):
        rng = random.Random(per)
        resources = [
            f"acs:oss:*:*:bucket{g}/" + "*".join(rng.choice("abcd") for _ in range(6)) + "*"
            for g in range(groups)
            for _ in range(per)
        ]
        doc = _policy("x")
        doc["Statement"][0]["Resource"] = resources
        new = parse_policy(doc)
        start = time.perf_counter()
        with contextlib.suppress(DiffTooLarge):
            diff_policies([old], [new])
        worst = max(worst, time.perf_counter() - start)
    rows.append(
        (
            "diff refused at its budget: slowest of 4 adversarial inputs (library)",
            _ms(worst),
            "<= 10 s",
            verdict(worst, 10),
        )
    )

    # lint: hostile Action and Resource patterns against the catalog and each other
    from permgen.lint.engine import lint_policy

    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject"],
                "Resource": ["acs:oss:*:*:" + "a" * 60 + "/r/*"],
            },
            {"Effect": "Allow", "Action": ["oss:ListObjects"], "Resource": [_hostile(10)]},
            {
                "Effect": "Allow",
                "Action": ["oss:" + "*e" * 12 + "*t"],
                "Resource": ["acs:oss:*:*:" + "a" * 60 + "/" + "*a" * 30 + "*b"],
            },
        ],
    }
    text = json.dumps(doc)
    med, _, _ = summary(time_call(lambda: list(lint_policy(text)), runs=10))
    rows.append(
        ("lint: a policy of hostile patterns (library)", _ms(med), "<= 1 s", verdict(med, 1))
    )

    # emulator: AssumeRole with a 139-byte hostile session policy, then the token used
    med = _emulator()
    rows.append(
        (
            "emulator: GetPolicy with a 139-byte hostile session policy (SDK over HTTP)",
            _ms(med),
            "<= 100 ms",
            verdict(med, 0.1),
        )
    )
    print_table("hostile wildcard patterns", rows)
    return 0


def _time(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, env=bench_env(), cwd=ROOT, capture_output=True, timeout=600)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 3):
            raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()[-500:]}")
    return times


SPEC = """\
version: 1
defaults:
  account: "1234567890123456"
templates: tpl
roles:
  reader:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["exports/"]}]
"""


def _review(d: Path) -> tuple[float, float]:
    repo = d / "repo"
    (repo / "tpl").mkdir(parents=True)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "bench@example.invalid")
    git("config", "user.name", "bench")
    (repo / "tpl" / "keep.txt").write_text("")
    (repo / "roles.yaml").write_text(SPEC)
    git("add", ".")
    git("commit", "-q", "-m", "base")
    (repo / "tpl" / "hostile.json.j2").write_text(json.dumps(_policy(_hostile(30))))
    (repo / "roles.yaml").write_text(
        SPEC + "  odd:\n    template: hostile\n    grants: [{bucket: corp-data}]\n"
    )
    git("add", "tpl/hostile.json.j2")  # review reads only the templates git tracks
    argv = [*permgen_argv(), "review", "roles.yaml", "--base", "main"]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run(argv, env=bench_env(), cwd=repo, capture_output=True, timeout=600)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 3):
            raise SystemExit(f"review failed: {proc.stderr.decode()[-500:]}")
    med, p90, _ = summary(times)
    return med, p90


def _emulator() -> float:
    from aliyunsdkcore.acs_exception.exceptions import ServerException
    from aliyunsdkcore.auth.credentials import StsTokenCredential
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET, Backend, Emulator

    session_policy = (
        '{"Version": "1","Statement":[{"Effect":"Allow","Action":"ram:GetPolicy",'
        '"Resource":"acs:ram:*:*:policy/' + "*a" * 15 + '*b"}]}'
    )
    assert len(session_policy.encode()) == 139
    trust = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": ["acs:ram::1234567890123456:root"]},
                }
            ],
        }
    )
    guard = {"http": None, "https": "http://127.0.0.1:9"}

    def client(emu: Emulator, ak: str | None, secret: str | None, cred: Any = None) -> AcsClient:
        c = AcsClient(ak, secret, "cn-hangzhou", credential=cred, timeout=30, proxy=guard)
        for product in ("Ram", "Sts"):
            c.add_endpoint("cn-hangzhou", product, emu.url)
        return c

    def call(c: AcsClient, action: str, product: str = "Ram", **params: str) -> Any:
        req = CommonRequest()
        req.set_product(product)
        req.set_version("2015-05-01" if product == "Ram" else "2015-04-01")
        req.set_action_name(action)
        req.set_method("POST")
        req.set_protocol_type("http")
        for k, v in params.items():
            req.add_query_param(k, v)
        return json.loads(c.do_action_with_exception(req))

    with Emulator(Backend()) as emu:
        admin = client(emu, ADMIN_KEY_ID, ADMIN_KEY_SECRET)
        call(admin, "CreateRole", RoleName="auditor", AssumeRolePolicyDocument=trust)
        call(admin, "CreateUser", UserName="vendor")
        call(
            admin,
            "AttachPolicyToUser",
            PolicyType="System",
            PolicyName="AliyunSTSAssumeRoleAccess",
            UserName="vendor",
        )
        key = emu.backend.add_key("user/vendor")
        vendor = client(emu, key.key_id, key.secret)
        creds = call(
            vendor,
            "AssumeRole",
            "Sts",
            RoleArn="acs:ram::1234567890123456:role/auditor",
            RoleSessionName="bench",
            Policy=session_policy,
        )["Credentials"]
        token = client(
            emu,
            None,
            None,
            StsTokenCredential(
                creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"]
            ),
        )

        def denied() -> None:
            try:
                call(token, "GetPolicy", PolicyName="a" * 60)
            except ServerException as exc:
                assert exc.get_error_code() == "NoPermission"
            else:
                raise AssertionError("the hostile pattern matched")

        med, _, _ = summary(time_call(denied, runs=20))
    return med


if __name__ == "__main__":
    sys.exit(main())
