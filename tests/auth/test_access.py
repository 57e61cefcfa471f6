"""The access table: rules x identities x actions, the 401/403 split, and grant narrowing."""

from __future__ import annotations

import pytest

from auth.access import NOBODY, Access, Action, Identity, Rule, Verdict, decide

ANON = None
PLAIN = Identity("reader")  # authenticated, in no group
PUSHER = Identity("mark", frozenset({"pusher"}))
OTHER = Identity("olga", frozenset({"ops", "auditors"}))
IDENTITIES = {"anonymous": ANON, "plain": PLAIN, "pusher": PUSHER, "other": OTHER}

RULES = {
    "anyone": Rule(anyone=True),
    "users": Rule(users=True),
    "pusher": Rule.of_groups(["pusher"]),
    "ops+admins": Rule.of_groups(["ops", "admins"]),
    "nobody": Rule(),
}

# rule -> the identities it allows
ALLOWED = {
    "anyone": {"anonymous", "plain", "pusher", "other"},
    "users": {"plain", "pusher", "other"},
    "pusher": {"pusher"},
    "ops+admins": {"other"},
    "nobody": set(),
}


@pytest.mark.parametrize("rule_name", sorted(RULES))
@pytest.mark.parametrize("who_name", sorted(IDENTITIES))
@pytest.mark.parametrize("action", list(Action))
def test_decision_table(rule_name: str, who_name: str, action: Action) -> None:
    rule = RULES[rule_name]
    access = Access(pull=rule, push=rule, delete=rule)
    who = IDENTITIES[who_name]
    verdict = decide(access, who, action, "team/app", "")
    if who_name in ALLOWED[rule_name]:
        assert verdict is Verdict.ALLOW
    elif who is None:
        assert verdict is Verdict.UNAUTHENTICATED
    else:
        assert verdict is Verdict.FORBIDDEN
    assert rule.allows(who, "") is (verdict is Verdict.ALLOW)


@pytest.mark.parametrize(
    ("who", "pull", "push", "delete"),
    [
        (ANON, Verdict.ALLOW, Verdict.UNAUTHENTICATED, Verdict.UNAUTHENTICATED),
        (PLAIN, Verdict.ALLOW, Verdict.FORBIDDEN, Verdict.FORBIDDEN),
        (PUSHER, Verdict.ALLOW, Verdict.ALLOW, Verdict.ALLOW),
        (OTHER, Verdict.ALLOW, Verdict.FORBIDDEN, Verdict.FORBIDDEN),
    ],
)
def test_default_table_is_the_seed_apache_config(
    who: Identity | None, pull: Verdict, push: Verdict, delete: Verdict
) -> None:
    access = Access()
    assert decide(access, who, Action.PULL, "a", "") is pull
    assert decide(access, who, Action.PUSH, "a", "") is push
    assert decide(access, who, Action.DELETE, "a", "") is delete


def test_actions_are_judged_separately() -> None:
    access = Access(pull=Rule(users=True), push=Rule.of_groups(["pusher"]), delete=Rule.of_groups(["admins"]))
    admin = Identity("root", frozenset({"admins"}))
    assert decide(access, ANON, Action.PULL, "a", "") is Verdict.UNAUTHENTICATED
    assert decide(access, PUSHER, Action.DELETE, "a", "") is Verdict.FORBIDDEN
    assert decide(access, admin, Action.DELETE, "a", "") is Verdict.ALLOW
    assert decide(access, admin, Action.PUSH, "a", "") is Verdict.FORBIDDEN


def test_catalog_uses_its_own_rule_and_only_for_pull() -> None:
    access = Access(pull=Rule(anyone=True), catalog=Rule.of_groups(["ops"]))
    assert decide(access, ANON, Action.PULL, None, "") is Verdict.UNAUTHENTICATED
    assert decide(access, PUSHER, Action.PULL, None, "") is Verdict.FORBIDDEN
    assert decide(access, OTHER, Action.PULL, None, "") is Verdict.ALLOW
    assert access.rule(Action.PUSH, None) is NOBODY
    assert decide(access, OTHER, Action.PUSH, None, "") is Verdict.FORBIDDEN
    assert decide(Access(push=Rule(anyone=True)), ANON, Action.DELETE, None, "") is Verdict.UNAUTHENTICATED


def test_group_names_must_match_exactly() -> None:
    rule = Rule.of_groups(["pusher"])
    assert not rule.allows(Identity("x", frozenset({"Pusher"})), "")
    assert not rule.allows(Identity("x", frozenset({"pushers"})), "")
    assert not rule.allows(Identity("pusher"), "")  # a user named like the group is not a member


def test_describe() -> None:
    assert Rule(anyone=True).describe() == "anyone"
    assert Rule(users=True).describe() == "users"
    assert Rule.of_groups(["b", "a"]).describe() == "[a, b]"
    assert NOBODY.describe() == "nobody"


@pytest.mark.parametrize(
    ("who", "wanted", "granted"),
    [
        (ANON, {Action.PULL, Action.PUSH}, {Action.PULL}),
        (PLAIN, {Action.PULL, Action.PUSH, Action.DELETE}, {Action.PULL}),
        (PUSHER, {Action.PULL, Action.PUSH}, {Action.PULL, Action.PUSH}),
        (PUSHER, {Action.PULL, Action.PUSH, Action.DELETE}, {Action.PULL, Action.PUSH, Action.DELETE}),
        (PUSHER, {Action.PUSH}, {Action.PUSH}),  # never widened
        (PUSHER, set(), set()),
        (OTHER, {Action.DELETE}, set()),
    ],
)
def test_grant_narrows_never_widens(who: Identity | None, wanted: set[Action], granted: set[Action]) -> None:
    result = Access().grant(who, "team/app", wanted, "")
    assert result == frozenset(granted)
    assert result <= frozenset(wanted)


def test_grant_follows_the_delete_rule() -> None:
    access = Access(delete=Rule.of_groups(["admins"]))
    everything = list(Action)
    assert access.grant(PUSHER, "a", everything, "") == {Action.PULL, Action.PUSH}
    assert access.grant(Identity("root", frozenset({"admins"})), "a", everything, "") == {Action.PULL, Action.DELETE}
    assert Access(pull=Rule(users=True)).grant(ANON, "a", everything, "") == frozenset()
