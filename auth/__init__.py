"""Policy for registry-auth-proxy: who is asking, and may they do this.

Nothing in this package imports aiohttp: the transport (``proxy``) depends on
it, never the reverse, so the policy can be tested and reused on its own.
"""
