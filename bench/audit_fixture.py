"""A synthetic account for the audit benchmark, in two forms of the same content.

1. :func:`account` — a snapshot as ``permgen audit`` reads it (``load_snapshot``): users (groups and
   attached policy names), groups, roles (trust policy), custom policies (RAM policy JSON with
   OSS actions on bucket resources, some RAM actions that escalate) and buckets (versioning,
   WORM retention, replication, bucket policy).
2. :func:`authorization_details` — the same account as an AWS ``get-account-authorization-
   details`` document, which cloudsplaining scans. Actions and resources are mapped like for
   like (see :data:`S3_ACTIONS`): ``oss:DeleteObject`` -> ``s3:DeleteObject``,
   ``acs:oss:*:<account>:<bucket>/*`` -> ``arn:aws:s3:::<bucket>/*``, ``ram:AttachPolicyToUser``
   -> ``iam:AttachUserPolicy``; bucket settings have no place in that document (it describes
   identities only), which is why such a scan cannot say whether a delete is recoverable.

Deterministic for a given size and seed.

    python bench/audit_fixture.py OUT_DIR   # writes snapshot.json and authorization-details.json
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

ACCOUNT = "1234567890123456"
AWS_ACCOUNT = "123456789012"
DATE = "2026-01-01T00:00:00Z"

# OSS (and RAM/STS) actions and the S3 (IAM/STS) action a like-for-like scan sees.
S3_ACTIONS: dict[str, str] = {
    "oss:*": "s3:*",
    "oss:GetObject": "s3:GetObject",
    "oss:PutObject": "s3:PutObject",
    "oss:DeleteObject": "s3:DeleteObject",
    "oss:DeleteObjectVersion": "s3:DeleteObjectVersion",
    "oss:GetObjectVersion": "s3:GetObjectVersion",
    "oss:ListObjects": "s3:ListBucket",
    "oss:ListObjectVersions": "s3:ListBucketVersions",
    "oss:PutObjectAcl": "s3:PutObjectAcl",
    "oss:PutBucketAcl": "s3:PutBucketAcl",
    "oss:PutBucketVersioning": "s3:PutBucketVersioning",
    "oss:PutBucketLifecycle": "s3:PutLifecycleConfiguration",
    "oss:DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "oss:PutBucketPolicy": "s3:PutBucketPolicy",
    "oss:DeleteBucketPolicy": "s3:DeleteBucketPolicy",
    "oss:PutBucketReplication": "s3:PutReplicationConfiguration",
    "oss:DeleteBucketReplication": "s3:PutReplicationConfiguration",
    "oss:InitiateBucketWorm": "s3:PutBucketObjectLockConfiguration",
    "oss:AbortBucketWorm": "s3:PutBucketObjectLockConfiguration",
    "oss:DeleteBucket": "s3:DeleteBucket",
    "oss:Get*": "s3:Get*",
    "oss:Put*": "s3:Put*",
    "oss:Delete*": "s3:Delete*",
    "ram:AttachPolicyToUser": "iam:AttachUserPolicy",
    "ram:AttachPolicyToRole": "iam:AttachRolePolicy",
    "ram:CreatePolicyVersion": "iam:CreatePolicyVersion",
    "ram:UpdateRole": "iam:UpdateAssumeRolePolicy",
    "ram:PassRole": "iam:PassRole",
    "ram:CreateAccessKey": "iam:CreateAccessKey",
    "ram:Get*": "iam:Get*",
    "ram:List*": "iam:List*",
    "sts:AssumeRole": "sts:AssumeRole",
}

READ = ["oss:GetObject", "oss:ListObjects", "oss:GetObjectVersion", "oss:ListObjectVersions"]
WRITE = ["oss:PutObject", "oss:PutObjectAcl"]
DESTROY = ["oss:DeleteObject", "oss:DeleteObjectVersion", "oss:PutBucketLifecycle"]
UNPROTECT = [
    "oss:PutBucketVersioning",
    "oss:DeleteBucketReplication",
    "oss:AbortBucketWorm",
    "oss:PutBucketPolicy",
    "oss:DeleteBucketPolicy",
    "oss:PutBucketAcl",
    "oss:DeleteBucket",
]
WILD = ["oss:*", "oss:Get*", "oss:Put*", "oss:Delete*"]
ESCALATE = [
    "ram:AttachPolicyToUser",
    "ram:AttachPolicyToRole",
    "ram:CreatePolicyVersion",
    "ram:UpdateRole",
    "ram:CreateAccessKey",
]
READ_RAM = ["ram:Get*", "ram:List*"]
#: Administrators: the first policies grant escalation (RAM writes on "*") and all of OSS; they
#: are attached only to the first groups (two each) and the first roles (one each), as an
#: account keeps its administrator policies to an administrators group and a few break-glass
#: roles. Every other policy grants OSS access on one to three buckets (1% of statements on
#: "*"), reads RAM, or lets an application assume one or two roles.
ADMIN_POLICIES = 10
ADMIN_GROUPS = 3
ADMIN_ROLES = 5


def _admin_statements(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"Effect": "Allow", "Action": sorted(rng.sample(ESCALATE, 2)), "Resource": ["*"]},
        {"Effect": "Allow", "Action": ["oss:*"], "Resource": ["*"]},
    ]


def _bucket(rng: random.Random, i: int, count: int) -> dict[str, Any]:
    name = f"data-{i:03d}"
    versioning = rng.choices(["Enabled", "Suspended", None], [5, 1, 4])[0]
    worm = None
    if rng.random() < 0.15:
        worm = {
            "worm_id": f"worm-{i:03d}",
            "state": rng.choice(["Locked", "InProgress"]),
            "retention_days": rng.choice([30, 90, 365]),
        }
    replication = []
    if rng.random() < 0.2:
        replication.append(
            {
                "rule_id": f"rep-{i:03d}",
                "destination_bucket": f"data-{(i + 1) % count:03d}",
                "destination_location": "oss-cn-shanghai",
                "action": rng.choice(["ALL", "PUT"]),
                "prefixes": [],
                "status": "doing",
            }
        )
    policy = None
    if rng.random() < 0.1:
        grantee = "*" if rng.random() < 0.3 else str(rng.randrange(10**15, 10**16))
        policy = json.dumps(
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": [grantee],
                        "Action": rng.sample(READ + WRITE + DESTROY, 2),
                        "Resource": [f"acs:oss:*:{ACCOUNT}:{name}/*"],
                    }
                ],
            },
            sort_keys=True,
        )
    acl = rng.choices(["private", "public-read", "public-read-write"], [20, 2, 1])[0]
    return {
        "name": name,
        "region": "cn-hangzhou",
        "acl": acl,
        "versioning": versioning,
        "block_public_access": rng.random() < 0.3,
        "policy": policy,
        "worm": worm,
        "replication": replication,
        "lifecycle": [],
        "overwrite": [],
    }


def _statement(rng: random.Random, buckets: list[str], roles: int) -> dict[str, Any]:
    r = rng.random()
    if r < 0.03:  # an application that assumes one or two roles
        return {
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": [
                f"acs:ram:*:{ACCOUNT}:role/r-{n:03d}"
                for n in sorted(rng.sample(range(roles), min(roles, rng.randint(1, 2))))
            ],
        }
    if r < 0.07:
        return {"Effect": "Allow", "Action": rng.sample(READ_RAM, 1), "Resource": ["*"]}
    if r < 0.2:
        return {
            "Effect": "Deny",
            "Action": rng.sample(DESTROY + UNPROTECT, rng.randint(1, 3)),
            "Resource": [f"acs:oss:*:{ACCOUNT}:{rng.choice(buckets)}/*"],
        }
    pools = [READ, WRITE, DESTROY, UNPROTECT, WILD]
    weights = [6, 4, 3, 1, 1]
    actions: list[str] = []
    for _ in range(rng.randint(1, 3)):
        pool = rng.choices(pools, weights)[0]
        actions += rng.sample(pool, rng.randint(1, min(2, len(pool))))
    targets = rng.sample(buckets, rng.randint(1, 3))
    resources = []
    for b in targets:
        resources.append(f"acs:oss:*:{ACCOUNT}:{b}")
        resources.append(f"acs:oss:*:{ACCOUNT}:{b}/{rng.choice(['*', 'logs/*', 'tmp/*'])}")
    if rng.random() < 0.01:
        resources = ["*"]
    stmt: dict[str, Any] = {
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": resources,
    }
    if rng.random() < 0.1:
        stmt["Condition"] = {"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}}
    return stmt


def account(
    *,
    users: int = 5000,
    groups: int = 500,
    roles: int = 500,
    policies: int = 2000,
    buckets: int = 300,
    seed: int = 20261129,
) -> dict[str, Any]:
    """The synthetic account as a snapshot of ``permgen audit`` (format version 1: policies
    keyed "Custom:name" holding their JSON text, trust policies as JSON text)."""
    rng = random.Random(seed)
    bucket_list = [_bucket(rng, i, buckets) for i in range(buckets)]
    names = [b["name"] for b in bucket_list]
    admins = min(ADMIN_POLICIES, policies)
    documents = {
        f"Custom:p-{i:04d}": json.dumps(
            {
                "Version": "1",
                "Statement": _admin_statements(rng)
                if i < admins
                else [_statement(rng, names, roles) for _ in range(rng.randint(1, 5))],
            },
            sort_keys=True,
        )
        for i in range(policies)
    }
    admin_names = list(documents)[:admins]
    pnames = list(documents)[admins:]
    group_list = [
        {
            "name": f"g-{i:03d}",
            "policies": sorted(
                rng.sample(admin_names, 2)
                if i < ADMIN_GROUPS
                else rng.sample(pnames, rng.randint(1, 4))
            ),
        }
        for i in range(groups)
    ]
    gnames = [g["name"] for g in group_list]
    user_list = [
        {
            "name": f"u-{i:04d}",
            "user_id": f"2{i:015d}",
            "groups": sorted(rng.sample(gnames, rng.randint(0, 3))),
            "policies": sorted(rng.sample(pnames, rng.randint(0, 2))),
        }
        for i in range(users)
    ]
    role_list = []
    for i in range(roles):
        if rng.random() < 0.7:
            principal: dict[str, list[str]] = {"RAM": [f"acs:ram::{ACCOUNT}:root"]}
        elif rng.random() < 0.8:
            principal = {"Service": ["ecs.aliyuncs.com"]}
        else:
            principal = {"RAM": [f"acs:ram::{rng.randrange(10**15, 10**16)}:root"]}
        trust = {
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}],
        }
        role_list.append(
            {
                "name": f"r-{i:03d}",
                "trust": json.dumps(trust, sort_keys=True),
                "policies": sorted(
                    rng.sample(admin_names, 1)
                    if i < ADMIN_ROLES
                    else rng.sample(pnames, rng.randint(1, 3))
                ),
            }
        )
    return {
        "version": 1,
        "account": ACCOUNT,
        "users": user_list,
        "groups": group_list,
        "roles": role_list,
        "policies": documents,
        "buckets": bucket_list,
    }


def _s3_resource(resource: str) -> str:
    oss = f"acs:oss:*:{ACCOUNT}:"
    ram = f"acs:ram:*:{ACCOUNT}:"
    if resource.startswith(oss):
        return "arn:aws:s3:::" + resource[len(oss) :]
    if resource.startswith(ram):
        return f"arn:aws:iam::{AWS_ACCOUNT}:" + resource[len(ram) :]
    return resource


def _aws_document(text: str) -> dict[str, Any]:
    doc = json.loads(text)
    statements = []
    for s in doc["Statement"]:
        out = {
            "Effect": s["Effect"],
            "Action": [S3_ACTIONS[a] for a in s["Action"]],
            "Resource": [_s3_resource(r) for r in s["Resource"]],
        }
        if "Condition" in s:
            out["Condition"] = {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}
        statements.append(out)
    return {"Version": "2012-10-17", "Statement": statements}


def _aws_trust(text: str) -> dict[str, Any]:
    trust = json.loads(text)
    statements = []
    for s in trust["Statement"]:
        principal = s["Principal"]
        if "Service" in principal:
            aws_principal: dict[str, list[str]] = {"Service": ["ec2.amazonaws.com"]}
        else:
            accounts = [p.split(":")[3] for p in principal["RAM"]]
            aws_principal = {
                "AWS": [
                    f"arn:aws:iam::{AWS_ACCOUNT if a == ACCOUNT else a[:12]}:root" for a in accounts
                ]
            }
        statements.append(
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": aws_principal}
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _policy_ref(key: str) -> dict[str, str]:
    name = key.split(":", 1)[1]
    return {"PolicyName": name, "PolicyArn": f"arn:aws:iam::{AWS_ACCOUNT}:policy/{name}"}


def authorization_details(acct: dict[str, Any]) -> dict[str, Any]:
    """The same account as an AWS account-authorization-details document."""
    counts: dict[str, int] = {}
    for principal in acct["users"] + acct["groups"] + acct["roles"]:
        for p in principal["policies"]:
            counts[p] = counts.get(p, 0) + 1
    users = [
        {
            "Path": "/",
            "UserName": u["name"],
            "UserId": f"AIDA{i:017d}",
            "Arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/{u['name']}",
            "CreateDate": DATE,
            "UserPolicyList": [],
            "GroupList": u["groups"],
            "AttachedManagedPolicies": [_policy_ref(p) for p in u["policies"]],
            "Tags": [],
        }
        for i, u in enumerate(acct["users"])
    ]
    groups = [
        {
            "Path": "/",
            "GroupName": g["name"],
            "GroupId": f"AGPA{i:017d}",
            "Arn": f"arn:aws:iam::{AWS_ACCOUNT}:group/{g['name']}",
            "CreateDate": DATE,
            "GroupPolicyList": [],
            "AttachedManagedPolicies": [_policy_ref(p) for p in g["policies"]],
        }
        for i, g in enumerate(acct["groups"])
    ]
    roles = [
        {
            "Path": "/",
            "RoleName": r["name"],
            "RoleId": f"AROA{i:017d}",
            "Arn": f"arn:aws:iam::{AWS_ACCOUNT}:role/{r['name']}",
            "CreateDate": DATE,
            "AssumeRolePolicyDocument": _aws_trust(r["trust"]),
            "InstanceProfileList": [],
            "RolePolicyList": [],
            "AttachedManagedPolicies": [_policy_ref(p) for p in r["policies"]],
            "Tags": [],
            "RoleLastUsed": {},
        }
        for i, r in enumerate(acct["roles"])
    ]
    policies = [
        {
            "PolicyName": _policy_ref(key)["PolicyName"],
            "Arn": _policy_ref(key)["PolicyArn"],
            "PolicyId": f"ANPA{i:017d}",
            "Path": "/",
            "DefaultVersionId": "v1",
            "AttachmentCount": counts.get(key, 0),
            "PermissionsBoundaryUsageCount": 0,
            "IsAttachable": True,
            "CreateDate": DATE,
            "UpdateDate": DATE,
            "PolicyVersionList": [
                {
                    "Document": _aws_document(text),
                    "VersionId": "v1",
                    "IsDefaultVersion": True,
                    "CreateDate": DATE,
                }
            ],
        }
        for i, (key, text) in enumerate(sorted(acct["policies"].items()))
    ]
    return {
        "UserDetailList": users,
        "GroupDetailList": groups,
        "RoleDetailList": roles,
        "Policies": policies,
    }


def write(out: Path, **sizes: int) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    acct = account(**sizes)
    neutral = out / "snapshot.json"
    aws = out / "authorization-details.json"
    neutral.write_text(json.dumps(acct, sort_keys=True), encoding="utf-8")
    aws.write_text(json.dumps(authorization_details(acct), sort_keys=True), encoding="utf-8")
    return neutral, aws


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python bench/audit_fixture.py OUT_DIR")
    for path in write(Path(sys.argv[1])):
        print(path)
