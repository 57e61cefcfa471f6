"""Password hashes: checking every format Apache writes, and writing Apache bcrypt.

Why one module for both directions: the reader (``store``) and the CLI editor
must agree on which hashes are usable, how a bcrypt password over 72 bytes is
cut, and what a cost is. Accepted on read: every hash Apache's ``htpasswd``
writes on Unix (bcrypt ``$2y$``, apr1, ``{SHA}``, crypt, ``$5$``/``$6$``);
plaintext is refused, as Apache does on Unix. Written: bcrypt only.

``DUMMY_HASHES`` are constants on purpose: an unknown user must cost as much as
a wrong password (or response times reveal which names exist), but computing
that dummy at reload time would stall every request behind one bcrypt. They
were generated once with ``bcrypt.hashpw`` and pasted here, as distribution
does with its own dummy hash.

Why ``equivalent_cost`` and ``padding_costs``: one file can mix costs and
schemes (measured: a wrong password for a cost-12 user took 382 ms, an unknown
user 5 ms), so every failed check is padded with dummies up to the slowest
hash in the file, and ``odd_hashes`` tells the operator whom to rehash.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

import bcrypt
from passlib.context import CryptContext

SCHEMES = ["bcrypt", "apr_md5_crypt", "ldap_sha1", "sha256_crypt", "sha512_crypt", "des_crypt"]
"""Everything Apache on Unix verifies; plaintext is deliberately absent."""

CONTEXT = CryptContext(schemes=SCHEMES)

BCRYPT_MAX_BYTES = 72
"""bcrypt only uses the first 72 bytes of a password (Apache truncates silently)."""

MIN_COST, MAX_COST = 4, 17
"""The cost range Apache's ``htpasswd -C`` accepts; above 17 a check takes minutes."""

DEFAULT_COST = 12
"""What ``user add``/``user passwd`` use without ``--cost`` (≈250 ms per check)."""

DUMMY_PASSWORD = "dummy password"
"""The password behind every ``DUMMY_HASHES`` entry; knowing it grants nothing."""

DUMMY_HASHES: dict[int, str] = {
    4: "$2y$04$gBiyJsWWzfwM9tG4ooDbauxzUOCLBMNi6T4oUKR5/UWeop4i7iV6.",
    5: "$2y$05$ZuavW6w0UPl/kdeEPMir/.35RgXwJFgbAgVSrh7q6rl0o/expuIGW",
    6: "$2y$06$X46OGCoZajy1HmeKXcvfd.z6naCQHRR8N4wGwOBytk1.to9piZgBa",
    7: "$2y$07$TsZ/nh74.wzF3GM/dFQxcO5.rUTf5xkpuEquRls9RNixM8naaqMF6",
    8: "$2y$08$we.1wwvDD60iUd4Fy2CaFuv8tC2TeKY2fna5nMF525xlp8Gtdfvoi",
    9: "$2y$09$NYvc6k1E6cF9cdUR/E5vleUz.Q46T7IseBVMkrPcrkEx/YNc/RhyC",
    10: "$2y$10$p9eKQVXms3NivvjcuYNvV.TFBRyhnVGd4PGd/3vIuKGqK20sBKoyK",
    11: "$2y$11$jTfIXkw5d0.7ApXa34/3uOz9LkELp7ytp.UUouA4lpO3i7EWk27K.",
    12: "$2y$12$ICFBPURofdyzzaFk7domluXGLUaeBg7smeCKORwIAgGOIauzJNJMC",
    13: "$2y$13$wXSdP22Y5yOr/RwM.kybFOGTP2yNmiJX8JgM4jaSw7M96y4hFqV96",
    14: "$2y$14$/e6Bc/t2zFDh7/vDFL.nBuvW700NcweIMCkmXyo4l3mOO.aWEpdTy",
    15: "$2y$15$o1HaUidgqsqUtur/sqmqwOnaB9ML1LhRldOCjkwqqknExNWvtFWN2",
    16: "$2y$16$dIsijLlH5K4qu0wefRPJnuaVSrx9J0CVhpsm6Gx2adqK4vPUgyJMy",
    17: "$2y$17$6uX76469YmxyP2mWfprVe.Pv/aVQAD6oJHblcWlKIaDzEp/Xigaq.",
}
"""A valid ``$2y$`` hash of ``DUMMY_PASSWORD`` for every cost Apache can write."""


def dummy_hash(cost: int) -> str:
    """The constant dummy hash for ``cost``, clamped to ``MIN_COST..MAX_COST``.

    A file may hold bcrypt costs up to 31 (made by other tools); beyond 17 a
    single check takes minutes, so the dummy stops there.
    """
    return DUMMY_HASHES[min(max(cost, MIN_COST), MAX_COST)]


def scheme_of(hash_: str) -> str | None:
    """The passlib scheme that can check ``hash_``, or None if it is unusable."""
    try:
        name = CONTEXT.identify(hash_, required=False)
        if name is None:
            return None
        CONTEXT.handler(name).from_string(hash_)  # parse only: rejects truncated hashes
    except (ValueError, TypeError):
        return None
    return name


def _prepare(password: str, hash_: str) -> bytes:
    data = password.encode("utf-8")
    if hash_.startswith("$2") and len(data) > BCRYPT_MAX_BYTES:
        data = data[:BCRYPT_MAX_BYTES]  # what Apache's bcrypt does; bcrypt 5 would raise
    return data


def check_password(password: str, hash_: str) -> bool:
    """Constant-shape check; any malformed input is simply a wrong password."""
    try:
        return bool(CONTEXT.verify(_prepare(password, hash_), hash_))
    except (ValueError, TypeError):
        return False


def bcrypt_cost(hash_: str) -> int | None:
    """The cost field of a bcrypt hash (``$2y$12$...`` -> 12), None for other hashes."""
    if not hash_.startswith("$2"):
        return None
    try:
        return int(hash_.split("$")[2])
    except (IndexError, ValueError):
        return None


def hash_password(password: str | bytes, cost: int = DEFAULT_COST) -> str:
    """Return an Apache-style ``$2y$`` bcrypt hash of ``password``.

    Apache's ``htpasswd -B`` silently uses only the first 72 bytes; bcrypt 5
    raises ValueError instead, so we truncate first to behave like Apache (a
    hash made here and one made by Apache accept exactly the same passwords).
    ``$2y$`` and ``$2b$`` are the same algorithm; Apache writes ``$2y$``, so we
    do too, so the files look the same whichever tool wrote them.
    """
    if not MIN_COST <= cost <= MAX_COST:
        raise ValueError(f"bcrypt cost must be between {MIN_COST} and {MAX_COST}, got {cost}")
    secret = password.encode("utf-8") if isinstance(password, str) else password
    if b"\x00" in secret:
        raise ValueError("password must not contain NUL bytes")
    secret = secret[:BCRYPT_MAX_BYTES]
    hashed = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=cost, prefix=b"2b")).decode("ascii")
    return "$2y$" + hashed[len("$2b$") :]


FAST = 0
"""``equivalent_cost`` of apr1, ``{SHA}`` and DES crypt: each checks in well under a cost-4 bcrypt."""

SHA_CRYPT_ROUNDS_PER_UNIT = 100
"""sha256/sha512-crypt rounds that take about as long as one bcrypt ``2**cost`` unit.

Measured here with passlib: 5000 sha512-crypt rounds 2.5 ms, 5000 sha256-crypt
rounds 1.7 ms, bcrypt cost 5 1.8 ms and cost 6 3.6 ms; so 5000 rounds ~ cost 5.6.
"""

_SCHEME_NAMES = {"apr_md5_crypt": "apr1 (MD5)", "ldap_sha1": "{SHA} (unsalted SHA-1)", "des_crypt": "DES crypt",
                 "sha256_crypt": "SHA-256 crypt", "sha512_crypt": "SHA-512 crypt"}


def equivalent_cost(hash_: str) -> int:
    """How slow a check against ``hash_`` is, as the bcrypt cost that takes about as long.

    bcrypt: its own cost. sha256/sha512-crypt: from their rounds (see
    ``SHA_CRYPT_ROUNDS_PER_UNIT``). Everything else, and anything unusable: ``FAST``.
    """
    cost = bcrypt_cost(hash_)
    if cost is not None:
        return cost
    name = scheme_of(hash_)
    if name in ("sha256_crypt", "sha512_crypt"):
        rounds = int(getattr(CONTEXT.handler(name).from_string(hash_), "rounds", 0) or 0)
        return max(FAST, round(math.log2(max(rounds, 1) / SHA_CRYPT_ROUNDS_PER_UNIT)))
    return FAST


def padding_costs(own: int, target: int) -> tuple[int, ...]:
    """Dummy costs to check after a failed check at cost ``own``, so it costs what one at ``target`` does.

    bcrypt's work doubles per cost step and ``2**t - 2**o == 2**o + ... +
    2**(t-1)``, so dummies of costs ``own .. target-1`` make up the difference
    exactly (at most four checks). When ``own`` is five or more steps below
    (under 1/32 of the work) or not bcrypt-like at all, one dummy at ``target``
    is closer and cheaper: at most 3 % over. An unknown user is ``own=FAST``.
    """
    if own >= target:
        return ()
    if own < MIN_COST or target - own > 4:
        return (target,)
    return tuple(range(own, target))


def describe_hash(hash_: str) -> str:
    """``bcrypt cost 12``, ``apr1 (MD5)``, ``SHA-512 crypt (5000 rounds)``: what ``odd_hashes`` names."""
    cost = bcrypt_cost(hash_)
    if cost is not None:
        return f"bcrypt cost {cost}"
    name = scheme_of(hash_) or "unusable"
    label = _SCHEME_NAMES.get(name, name)
    if name in ("sha256_crypt", "sha512_crypt"):
        return f"{label} ({CONTEXT.handler(name).from_string(hash_).rounds} rounds)"
    return label


def _cost_flag(hash_: str) -> str:
    """`` --cost N`` for ``user passwd`` to write a hash like ``hash_`` ("" when the default does)."""
    cost = bcrypt_cost(hash_)
    return f" --cost {cost}" if cost is not None and cost != DEFAULT_COST else ""


def odd_hashes(hashes: Mapping[str, str], command: str = "registry-auth-proxy", limit: int = 10) -> list[str]:
    """One line per user whose scheme or cost differs from the rest, saying how to rehash.

    "The rest" is the most common kind of hash (on a tie, the slowest). Why
    it matters: every failed login is padded to the slowest hash in the file,
    so a cheap hash saves nothing and weakens that user against an offline
    attack, and one costly hash makes every failed login cost that much (then
    the others are the ones to rehash, unless that cost was a mistake).
    ``user passwd`` writes bcrypt at the configured cost (``DEFAULT_COST``);
    when the rest use another bcrypt cost the command passes it as ``--cost``.
    """
    kinds = {user: describe_hash(h) for user, h in hashes.items()}
    if len(set(kinds.values())) < 2:
        return []
    counts = Counter(kinds.values())
    work = {kinds[u]: equivalent_cost(h) for u, h in hashes.items()}
    common = max(counts, key=lambda kind: (counts[kind], work[kind]))
    ref = next(h for u, h in hashes.items() if kinds[u] == common)
    both_bcrypt = bcrypt_cost(ref) is not None
    odd = [u for u in hashes if kinds[u] != common]
    lines: list[str] = []
    for user in odd[:limit]:
        others = common.removeprefix("bcrypt cost ") if both_bcrypt and bcrypt_cost(hashes[user]) else common
        fix_user = f"`{command} user passwd {user}{_cost_flag(ref)}`"
        if work[kinds[user]] > work[common]:
            alternative = f", or {user} with {fix_user}" if both_bcrypt else ""
            lines.append(f"{user}: {kinds[user]}, others {others}; every failed login is padded to it: rehash "
                         f"the others with `{command} user passwd NAME{_cost_flag(hashes[user])}`{alternative}")
        else:
            lines.append(f"{user}: {kinds[user]}, others {others}; run {fix_user} to rehash")
    if len(odd) > limit:
        lines.append(f"... and {len(odd) - limit} more users whose hash differs from the rest ({common})")
    return lines
