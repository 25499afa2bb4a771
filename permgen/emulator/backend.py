"""The emulator's in-process backend: one account's state with every RAM and STS handler."""

from __future__ import annotations

import json
from typing import Any

from permgen.emulator.ram import RamHandlers
from permgen.emulator.state import ACCOUNT, ADMIN_KEY_ID, Key
from permgen.emulator.sts import StsHandlers


class Backend(RamHandlers, StsHandlers):
    """One account. ``clock`` returns seconds since the epoch (tests move it)."""

    def seed(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Create what a seed file describes, through the same handlers the API uses (so the
        same checks apply); returns its ``faults`` entries for the server.

        ``{users: [{name, groups: [..], access_keys: [{id, secret}]}], groups: [..],
        roles: [{name, trust: {..} | trusted: [principal ARN..], max_session}],
        policies: [{name, document: {..}, description}], attachments: [{policy, type, to: "user:NAME"}],
        faults: [{action, code, status, times, delay, drop}]}``
        """
        root = self.keys[ADMIN_KEY_ID]
        for g in data.get("groups", []):
            self.CreateGroup({"GroupName": g}, root)
        for u in data.get("users", []):
            self.CreateUser({"UserName": u["name"]}, root)
            for g in u.get("groups", []):
                if g not in self.groups:
                    self.CreateGroup({"GroupName": g}, root)
                self.AddUserToGroup({"UserName": u["name"], "GroupName": g}, root)
            for k in u.get("access_keys", []):
                self.keys[k["id"]] = Key(k["id"], k["secret"], f"user/{u['name']}")
        for r in data.get("roles", []):
            trust = r.get("trust") or {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"RAM": r.get("trusted", [f"acs:ram::{ACCOUNT}:root"])},
                    }
                ],
            }
            self.CreateRole(
                {
                    "RoleName": r["name"],
                    "AssumeRolePolicyDocument": json.dumps(trust),
                    "MaxSessionDuration": str(r.get("max_session", 3600)),
                },
                root,
            )
        for p in data.get("policies", []):
            self.CreatePolicy(
                {
                    "PolicyName": p["name"],
                    "PolicyDocument": json.dumps(p["document"]),
                    "Description": p.get("description", ""),
                },
                root,
            )
        for a in data.get("attachments", []):
            kind, _, name = a["to"].partition(":")
            handler = {
                "user": self.AttachPolicyToUser,
                "group": self.AttachPolicyToGroup,
                "role": self.AttachPolicyToRole,
            }[kind]
            handler(
                {
                    f"{kind.capitalize()}Name": name,
                    "PolicyName": a["policy"],
                    "PolicyType": a.get("type", "Custom"),
                },
                root,
            )
        faults: list[dict[str, Any]] = list(data.get("faults", []))
        return faults
