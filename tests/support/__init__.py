"""Real-component test infrastructure: registry, TLS files, clients, daemons.

Everything here starts real programs (docker-registry, dockerd, skopeo,
podman, the proxy itself) because the project's tests prove behaviour
against real parts, not mocks.
"""
