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


def parse_rule(r: Reader, dotted: str, value: object) -> Rule:
    if value == "anyone":
        return Rule(anyone=True)
    if value == "users":
        return Rule(users=True)
    if isinstance(value, list) and all(isinstance(g, str) and g and ":" not in g for g in value):
        return Rule.of_groups(value)
    raise r.fail(dotted, "anyone, users, or a list of group names", value)


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


def access_table(access: Access) -> list[str]:
    """Who may do what, and where: the defaults, then each rule in match order."""
    width = max([len("(default)"), *(len(rule.match) for rule in access.repositories)])
    lines = [f"  {'where':<{width}}  {'pull':<16} {'push':<16} delete"]
    defaults = [access.default(Action(a)).describe() for a in ACTIONS]
    lines.append(f"  {'(default)':<{width}}  " + " ".join(f"{d:<16}" for d in defaults).rstrip())
    for rule in access.repositories:
        cells = [
            (rule.for_action(Action(a)) or access.default(Action(a))).describe()
            + ("" if rule.for_action(Action(a)) else "*")
            for a in ACTIONS
        ]
        lines.append(f"  {rule.match:<{width}}  " + " ".join(f"{c:<16}" for c in cells).rstrip())
    lines.append(f"  catalog (/v2/_catalog): {access.catalog.describe()}")
    if access.repositories:
        lines.append("  first matching rule wins; * = from the default; unmatched names use the default")
    return lines
