"""The policy of registry-auth-proxy: who is asking, and may they do this. Pure and synchronous.

Nothing in this package imports aiohttp or ``proxy``: the transport depends on
it, never the reverse (``tests/test_layering.py``), so the policy can be read,
tested and reused on its own.

* ``routes``       raw method + path -> Route; everything else is refused here
* ``access``       the access table: Action, Identity, Rule, Access (``globs`` compiles its patterns)
* ``decision``     Policy: challenges, refusals and verdicts for a user or a token
* ``credentials``  the Authorization header; ``tokens`` and ``scopes``: the token flow
* ``throttle``     failed-login counters; ``names``: the distribution name grammar
* ``errors``       ProxyError, the one error type
* ``userfiles``    htpasswd and group files: parsers, hashing, atomic edits, the UserStore
"""

from auth.access import Access, Action, Identity, Rule
from auth.decision import Origin, Policy
from auth.errors import ProxyError
from auth.routes import Route, Router

__all__ = ["Access", "Action", "Identity", "Origin", "Policy", "ProxyError", "Route", "Router", "Rule"]
