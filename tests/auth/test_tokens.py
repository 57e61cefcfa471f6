"""The JWTs themselves: shape, expiry, keys, algorithms and forged or malformed tokens."""

from __future__ import annotations

import time

import jwt
import pytest

from auth.tokens import LEEWAY, Claims, Grant, TokenAuthority, TokenError, new_key

KEY = b"k" * 32
SERVICE = "registry.example"
ISSUER = "registry-auth-proxy"


class FakeClock:
    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


def authority(key: bytes = KEY, service: str = SERVICE, issuer: str = ISSUER, ttl: int = 300,
              clock: FakeClock | None = None) -> TokenAuthority:
    return TokenAuthority(key, service, issuer, ttl, clock=clock or FakeClock())


# ------------------------------------------------------------------ tokens


def test_round_trip() -> None:
    tokens = authority()
    grants = [Grant("repository", "team/app", ("pull", "push")), Grant("registry", "catalog", ("*",))]
    issued = tokens.issue("mark", grants, fingerprint="abc123")
    claims = tokens.verify(issued.token)
    assert claims == Claims("mark", tuple(grants), "abc123")
    assert claims.allows("repository", "team/app", "push")
    assert claims.allows("registry", "catalog", "*")
    assert not claims.allows("repository", "team/app", "delete")
    assert not claims.allows("repository", "other", "pull")
    assert not claims.allows("registry", "team/app", "pull")


def test_token_shape_follows_the_spec() -> None:
    clock = FakeClock()
    tokens = authority(ttl=120, clock=clock)
    issued = tokens.issue("", [Grant("repository", "a", ("pull",))])
    payload = jwt.decode(issued.token, KEY, algorithms=["HS256"], audience=SERVICE)
    assert payload["iss"] == ISSUER and payload["sub"] == "" and payload["aud"] == SERVICE
    assert payload["exp"] == int(clock.now) + 120 and payload["iat"] == int(clock.now)
    assert payload["access"] == [{"type": "repository", "name": "a", "actions": ["pull"]}]
    assert "fp" not in payload
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    body = issued.as_response()
    assert body["token"] == body["access_token"] == issued.token
    assert body["expires_in"] == 120
    assert body["issued_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(clock.now)))
    assert tokens.verify(issued.token).subject == ""


def test_each_token_is_unique() -> None:
    tokens = authority()
    assert tokens.issue("mark", []).token != tokens.issue("mark", []).token


def test_expired_token_refused() -> None:
    past = FakeClock(time.time() - 300 - LEEWAY - 60)
    old = authority(ttl=300, clock=past).issue("mark", []).token
    with pytest.raises(TokenError, match="expired"):
        authority().verify(old)


def test_expiry_follows_the_authority_clock() -> None:
    """The clock given to the authority must also be the one expiry is judged by."""
    clock = FakeClock()
    tokens = authority(ttl=300, clock=clock)
    token = tokens.issue("mark", []).token
    clock.now += 100
    assert tokens.verify(token).subject == "mark"
    clock.now += 300 + LEEWAY + 60
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token)


def test_token_from_the_future_refused() -> None:
    future = FakeClock(time.time() + 3600)
    token = authority(clock=future).issue("mark", []).token
    with pytest.raises(TokenError):
        authority().verify(token)


def test_wrong_key_audience_or_issuer_refused() -> None:
    token = authority().issue("mark", []).token
    for other in (authority(key=b"x" * 32), authority(service="other.example"), authority(issuer="someone-else")):
        with pytest.raises(TokenError):
            other.verify(token)


def base_claims(**drop_or_set: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"iss": ISSUER, "sub": "mark", "aud": SERVICE, "exp": now + 300,
                                 "nbf": now - 1, "iat": now,
                                 "access": [{"type": "repository", "name": "a", "actions": ["push"]}]}
    for key, value in drop_or_set.items():
        if value is None:
            claims.pop(key)
        else:
            claims[key] = value
    return claims


def test_hand_made_token_with_the_key_is_accepted() -> None:
    """Control for the refusals below: the same construction, nothing wrong with it."""
    token = jwt.encode(base_claims(), KEY, algorithm="HS256")
    assert authority().verify(token).allows("repository", "a", "push")


def test_alg_none_refused() -> None:
    token = jwt.encode(base_claims(), None, algorithm="none")
    assert jwt.get_unverified_header(token)["alg"] == "none"
    with pytest.raises(TokenError):
        authority().verify(token)


@pytest.mark.parametrize("alg", ["HS512", "HS384"])
def test_other_hmac_algorithm_with_the_same_key_refused(alg: str) -> None:
    key = b"k" * 64  # long enough for HS512, so PyJWT does not warn
    assert authority(key=key).verify(jwt.encode(base_claims(), key, algorithm="HS256")).subject == "mark"
    token = jwt.encode(base_claims(), key, algorithm=alg)
    with pytest.raises(TokenError, match="algorithm"):
        authority(key=key).verify(token)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "aud", "iss", "sub"])
def test_missing_claim_refused(claim: str) -> None:
    token = jwt.encode(base_claims(**{claim: None}), KEY, algorithm="HS256")
    with pytest.raises(TokenError):
        authority().verify(token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "Bearer x", "e30.e30.", "....."])
def test_garbage_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(TokenError) as info:
        authority().verify(token)
    if len(token) > 3:
        assert token not in str(info.value)


def test_tampered_payload_refused() -> None:
    token = authority().issue("reader", [Grant("repository", "a", ("pull",))]).token
    header, payload, sig = token.split(".")
    forged = jwt.encode(base_claims(sub="reader"), b"y" * 32, algorithm="HS256").split(".")[1]
    with pytest.raises(TokenError):
        authority().verify(f"{header}.{forged}.{sig}")
    assert payload != forged


@pytest.mark.parametrize(
    "access",
    ["nope", {"type": "repository"}, ["x", 3, {"type": "repository", "name": "a", "actions": "push"}]],
)
def test_malformed_access_claim_grants_nothing(access: object) -> None:
    token = jwt.encode(base_claims(access=access), KEY, algorithm="HS256")
    claims = authority().verify(token)
    assert claims.grants == ()
    assert not claims.allows("repository", "a", "push")


def test_key_must_be_long_enough() -> None:
    with pytest.raises(ValueError):
        TokenAuthority(b"short", SERVICE, ISSUER, 300)
    assert len(new_key()) == 32
    assert new_key() != new_key()
