"""``registry catalog|tags|inspect|delete``: the seed's docker-reg-tool + jq, through the proxy.

Talks to the proxy (never around it) with the same auth as docker: Basic or
the token flow, TLS verified against ``--cacert``. Tables for people,
``--json`` for scripts; long walks show a counter on stderr when it is a
terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator

from proxy.cli.common import Subparsers
from proxy.cli.registry_client import RegistryClient, RegistryError, Reply, next_link

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
INDEXES = (OCI_INDEX, DOCKER_LIST)


def _progress(label: str, count: int) -> None:
    if sys.stderr.isatty():
        print(f"\r{label}: {count}", end="", file=sys.stderr, flush=True)


def _walk(client: RegistryClient, path: str, key: str, scope: str, label: str) -> Iterator[str]:
    """Follow ``Link: <...>; rel="next"`` pages to the end, on the ``--url`` origin only."""
    shown: str | None = path  # as the operator or the Link header wrote it, for messages
    url = client.url_for(path)
    count = 0
    while shown is not None:
        reply = client.request("GET", url, scope)
        if reply.status != 200:
            raise RegistryError(f"GET {shown}: HTTP {reply.status}: {reply.error_text()}")
        body = reply.json()
        items = (body.get(key) if isinstance(body, dict) else None) or []
        yield from items
        count += len(items)
        _progress(label, count)
        shown = next_link(reply)
        if shown is not None:
            url = client.follow(shown, url)  # RegistryError for another origin: nothing is sent there
    if sys.stderr.isatty():
        print(file=sys.stderr)


def split_ref(ref: str) -> tuple[str, str]:
    """``name:tag`` or ``name@sha256:...`` -> (name, reference); a bare name means ``latest``."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, digest
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def get_manifest(client: RegistryClient, name: str, reference: str, method: str = "GET") -> Reply:
    reply = client.request(method, f"/v2/{name}/manifests/{reference}", f"repository:{name}:pull",
                           {"Accept": ACCEPT})
    if reply.status == 404:
        raise RegistryError(f"{name}:{reference}: not found")
    if reply.status != 200:
        raise RegistryError(f"{name}:{reference}: HTTP {reply.status}: {reply.error_text()}")
    return reply


def inspect(client: RegistryClient, name: str, reference: str) -> dict[str, object]:
    reply = get_manifest(client, name, reference)
    manifest = reply.json()
    assert isinstance(manifest, dict)
    media = reply.headers.get("Content-Type", "").split(";")[0] or str(manifest.get("mediaType", ""))
    info: dict[str, object] = {
        "name": name, "reference": reference, "digest": reply.headers.get("Docker-Content-Digest"),
        "media_type": media, "size": len(reply.body),
    }
    if media in INDEXES:
        platforms = []
        for child in manifest.get("manifests", []):
            plat = child.get("platform") or {}
            label = "/".join(p for p in (plat.get("os"), plat.get("architecture"), plat.get("variant")) if p)
            sub = get_manifest(client, name, child["digest"]).json()
            layers = sub.get("layers", []) if isinstance(sub, dict) else []
            platforms.append({"platform": label or "unknown", "digest": child["digest"],
                              "layers": len(layers), "layers_size": sum(int(x.get("size", 0)) for x in layers)})
        info["platforms"] = platforms
        info["layers_size"] = sum(int(p["layers_size"]) for p in platforms)
    else:
        layers = manifest.get("layers", [])
        info["config"] = (manifest.get("config") or {}).get("digest")
        info["layers"] = len(layers)
        info["layers_size"] = sum(int(x.get("size", 0)) for x in layers)
    return info


def delete(client: RegistryClient, name: str, reference: str) -> str:
    """Resolve the tag to its digest (all four manifest types accepted), then DELETE by digest."""
    digest = reference
    if not reference.startswith("sha256:"):
        head = get_manifest(client, name, reference, method="HEAD")
        digest = head.headers.get("Docker-Content-Digest") or ""
        if not digest:
            raise RegistryError(f"{name}:{reference}: the registry did not say the digest")
    reply = client.request("DELETE", f"/v2/{name}/manifests/{digest}", f"repository:{name}:delete")
    if reply.status == 405:
        raise RegistryError("the registry has delete disabled (405 UNSUPPORTED): set "
                            "REGISTRY_STORAGE_DELETE_ENABLED=true (storage.delete.enabled: true) and restart it")
    if reply.status not in (200, 202):
        raise RegistryError(f"DELETE {name}@{digest}: HTTP {reply.status}: {reply.error_text()}")
    return digest


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _print_inspect(info: dict[str, object]) -> None:
    for key in ("name", "reference", "digest", "media_type", "config", "layers"):
        if key in info:
            print(f"{key + ':':<12} {info[key]}")
    print(f"{'layers_size:':<12} {_human(int(info['layers_size']))}")  # type: ignore[call-overload]
    platforms = info.get("platforms")
    if isinstance(platforms, list):
        print(f"{'PLATFORM':<20} {'LAYERS':>6} {'SIZE':>10}  DIGEST")
        for p in platforms:
            print(f"{p['platform']:<20} {p['layers']:>6} {_human(p['layers_size']):>10}  {p['digest']}")


def run(args: argparse.Namespace) -> int:
    password = os.environ.get("RAP_PASSWORD")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    client = RegistryClient(args.url, args.user, password, args.cacert)
    try:
        if args.action == "catalog":
            repos = list(_walk(client, f"/v2/_catalog?n={args.page_size}", "repositories", "registry:catalog:*",
                               "repositories"))
            print(json.dumps(repos) if args.json else "\n".join(repos))
        elif args.action == "tags":
            tags = list(_walk(client, f"/v2/{args.name}/tags/list?n={args.page_size}", "tags",
                              f"repository:{args.name}:pull", "tags"))
            print(json.dumps({"name": args.name, "tags": tags}) if args.json else "\n".join(tags))
        elif args.action == "inspect":
            info = inspect(client, *split_ref(args.ref))
            print(json.dumps(info)) if args.json else _print_inspect(info)
        else:
            name, reference = split_ref(args.ref)
            digest = delete(client, name, reference)
            print(json.dumps({"name": name, "deleted": digest}) if args.json
                  else f"deleted {name}@{digest} (every tag pointing at it is gone; run gc to free space)")
    except RegistryError as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 1
    return 0


def add_registry_commands(sub: Subparsers) -> None:
    """Register ``registry catalog|tags|inspect|delete``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", required=True, help="the proxy, e.g. https://registry.example.org:5043")
    common.add_argument("--user", help="log in as USER (password from --password-stdin or $RAP_PASSWORD)")
    common.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    common.add_argument("--cacert", help="CA file that signed the proxy's certificate")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--page-size", type=int, default=100, help="entries per request when listing (100)")
    reg = sub.add_parser("registry", help="list, inspect and delete images through the proxy")
    rsub = reg.add_subparsers(dest="action", required=True, metavar="ACTION")
    rsub.add_parser("catalog", parents=[common], help="list repositories (all pages)")
    rsub.add_parser("tags", parents=[common], help="list the tags of a repository").add_argument("name")
    rsub.add_parser("inspect", parents=[common], help="digest, media type, platforms, layer sizes").add_argument(
        "ref", help="NAME:TAG or NAME@DIGEST")
    rsub.add_parser("delete", parents=[common], help="delete a tag's manifest (by digest)").add_argument(
        "ref", help="NAME:TAG or NAME@DIGEST")
    reg.set_defaults(func=run)
