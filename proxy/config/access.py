"""The ``access:`` section: default rules per action and per-repository overrides.

Kept apart from ``config`` so the policy's syntax (and its table for
``check-config``) lives in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auth.access import Access, Action, RepositoryRule, Rule
from auth.globs import GlobError, glob_to_regex

if TYPE_CHECKING:
    from proxy.config.reader import Reader

ACTIONS = ("pull", "push", "delete")


SHORT = "anyone, users, or a list of group names"


def _who(r: Reader, dotted: str, value: object) -> Rule:
    if value == "anyone":
        return Rule(anyone=True)
    if value == "users":
        return Rule(users=True)
    if isinstance(value, list) and all(isinstance(g, str) and g and ":" not in g for g in value):
        return Rule.of_groups(value)
    raise r.fail(dotted, SHORT + ", or {who: ..., from: [NETWORK, ...]}", value)


def parse_rule(r: Reader, dotted: str, value: object) -> Rule:
    """A short form (``anyone``, ``users``, ``[groups]``) or ``{who|groups: ..., from: [CIDR, ...]}``."""
    if not isinstance(value, dict):
        return _who(r, dotted, value)
    data = r.section(value, dotted, {"who", "groups", "from"})
    if ("who" in data) == ("groups" in data):
        raise r.fail(dotted, "exactly one of who (anyone, users, [groups]) or groups ([groups])", value)
    if "groups" in data:
        if not isinstance(data["groups"], list):
            raise r.fail(f"{dotted}.groups", "a list of group names", data["groups"])
        rule = _who(r, f"{dotted}.groups", data["groups"])
    else:
        rule = _who(r, f"{dotted}.who", data["who"])
    if "from" not in data:
        return rule
    return Rule(rule.anyone, rule.users, rule.groups, r.networks(data["from"], f"{dotted}.from"))


def _repository(r: Reader, index: int, value: object) -> RepositoryRule:
    where = f"access.repositories[{index}]"
    data = r.section(value, where, {"match", *ACTIONS})
    match = data.get("match")
    if not isinstance(match, str) or not match:
        raise r.fail(f"{where}.match", 'a glob such as "team-a/**"', match)
    try:
        glob_to_regex(match)
    except GlobError as exc:
        raise r.fail(f"{where}.match", f"a valid glob ({exc})", match) from None
    overrides = {a: parse_rule(r, f"{where}.{a}", data[a]) for a in ACTIONS if a in data}
    if not overrides:
        raise r.fail(where, "at least one of pull, push, delete", value)
    return RepositoryRule(match=match, **overrides)


def parse_access(r: Reader, value: object) -> Access:
    data = r.section(value, "access", {"pull", "push", "delete", "catalog", "repositories"})
    repos = data.get("repositories", [])
    if not isinstance(repos, list):
        raise r.fail("access.repositories", "a list of {match: GLOB, pull/push/delete: RULE}", repos)
    rules = tuple(_repository(r, i, item) for i, item in enumerate(repos))
    return Access(
        pull=parse_rule(r, "access.pull", data.get("pull", "anyone")),
        push=parse_rule(r, "access.push", data.get("push", ["pusher"])),
        delete=parse_rule(r, "access.delete", data.get("delete", ["pusher"])),
        catalog=parse_rule(r, "access.catalog", data.get("catalog", "anyone")),
        repositories=rules,
    )


def _cell(rule: Rule, inherited: bool) -> str:
    """``who`` then ``*`` when inherited, then `` from NETS``: the star marks the cell, not the last network."""
    return Rule(rule.anyone, rule.users, rule.groups).describe() + ("*" if inherited else "") \
        + rule.describe_networks()


def access_table(access: Access) -> list[str]:
    """Who may do what, and from where: the defaults, then each rule in match order.

    Columns are as wide as their widest cell, because a cell with networks
    (``[pusher] from 10.0.0.0/8``) is longer than any fixed width that suits
    the common ``anyone`` / ``[pusher]``; two spaces always separate cells.
    """
    rows: list[tuple[str, ...]] = [("where", *ACTIONS),
                                   ("(default)", *(_cell(access.default(Action(a)), False) for a in ACTIONS))]
    for rule in access.repositories:
        rows.append((rule.match, *(_cell(rule.for_action(Action(a)) or access.default(Action(a)),
                                         rule.for_action(Action(a)) is None) for a in ACTIONS)))
    # every column but the last is padded: "where" to its widest entry, the actions to at least 16
    widths = [max(len(row[i]) for row in rows) if i == 0 else max(16, *(len(row[i]) for row in rows))
              for i in range(len(ACTIONS))]
    lines = ["  " + "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip()
             for row in rows]
    lines.append(f"  catalog (/v2/_catalog): {access.catalog.describe()}")
    if access.repositories:
        lines.append("  first matching rule wins; * = from the default; unmatched names use the default")
    used = [access.catalog, *(access.default(Action(a)) for a in ACTIONS),
            *(rule.for_action(Action(a)) or Rule() for rule in access.repositories for a in ACTIONS)]
    if any(rule.networks for rule in used):
        lines.append("  from NETS: only clients in those networks; elsewhere 403, logged in or not")
    return lines
