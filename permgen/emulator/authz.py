"""Who may call the emulator: a caller's identity policies, narrowed by a session policy,
decided by permgen's own evaluator."""

from __future__ import annotations

from permgen.emulator.state import ACCOUNT, EmulatorError, Key, State, parsed_policy
from permgen.policy.model import Policy


class Authorization(State):
    """Authorization of RAM and STS calls against the account's own policies."""

    def policies_in_force(self, caller: Key) -> list[Policy]:
        """The identity policies of the caller: a user's own and its groups', or a role's."""
        kind, _, rest = caller.principal.partition("/")
        holders: list[tuple[str, str]] = []
        if kind == "user":
            holders = [("User", rest)] + [
                ("Group", g) for g, members in sorted(self.groups.items()) if rest in members
            ]
        elif kind == "role":
            holders = [("Role", rest.split("/", 1)[0])]
        out: list[Policy] = []
        for holder in holders:
            for ptype, pname in sorted(self.attachments.get(holder, ())):
                rec = self.policies.get((ptype, pname))
                if rec is not None:
                    out.append(parsed_policy(rec.versions[rec.default]))
        return out

    def authorize(self, action: str, resources: list[str], caller: Key) -> None:
        """Raise NoPermission unless the caller may do ``action`` on every resource.

        The account (root) may do anything. A RAM user's policies and its groups' apply; an
        STS key has its role's policies, narrowed by the session policy it was minted with.
        The request's condition keys are :attr:`request_context` (the server sets
        ``acs:SourceIp``, ``acs:SecureTransport`` and ``acs:CurrentTime`` for each call)."""
        if caller.principal == "root":
            return
        from permgen.semantics.evaluate import Evaluator, Request, TokenEvaluator

        policies = self.policies_in_force(caller)
        evaluator: Evaluator | TokenEvaluator = (
            TokenEvaluator([parsed_policy(caller.session_policy)], policies)
            if caller.session_policy
            else Evaluator(policies)
        )
        for resource in resources:
            if not evaluator.allows(Request(action, resource, self.request_context)):
                raise EmulatorError(
                    "NoPermission",
                    403,
                    "You are not authorized to do this action. You should be authorized by RAM.",
                )

    def authorize_ram(self, action: str, p: dict[str, str], caller: Key) -> None:
        """``ram:<Action>`` on every entity the request names (policy, user, group, role),
        or on ``acs:ram:*:<account>:*`` when it names none. A user, group or role that
        exists is named in its stored spelling, whatever the request's case."""

        def spelled(kind: str, name: str) -> str:
            return name if kind == "Policy" else self.stored_name(kind, name) or name

        named = [
            f"acs:ram:*:{ACCOUNT}:{kind.lower()}/{spelled(kind, p[param])}"
            for param, kind in (
                ("PolicyName", "Policy"),
                ("UserName", "User"),
                ("GroupName", "Group"),
                ("RoleName", "Role"),
            )
            if p.get(param)
        ]
        self.authorize(f"ram:{action}", named or [f"acs:ram:*:{ACCOUNT}:*"], caller)
