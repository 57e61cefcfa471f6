"""registry-auth-proxy: the transport side (config, aiohttp app, forwarder, TLS, CLI)."""

__version__ = "0.1.0"
