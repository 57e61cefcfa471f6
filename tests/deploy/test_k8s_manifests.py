"""deploy/k8s: every manifest parses and the names they use for each other line up.

No cluster runs here, so what can be checked is what a cluster would resolve by
name: Service selectors against pod labels, named ports, the proxy's backend
URL against the registry Service, ConfigMap keys and Secret keys against the
paths proxy.yml names, the claims the pods mount, and the image tag against
the README's build command. A typo in any of them is a pod that never becomes
ready (or a Service with no endpoints), found only after ``kubectl apply``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from auth.keys import read_token_key
from proxy.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
Doc = dict[str, Any]


def _all_docs() -> list[Doc]:
    docs: list[Doc] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return docs


def _one(kind: str, name: str) -> Doc:
    (doc,) = [d for d in _all_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _pod(deployment: Doc) -> Doc:
    return deployment["spec"]["template"]["spec"]


def _proxy_yml() -> dict[str, Any]:
    return yaml.safe_load(_one("ConfigMap", "registry-auth-proxy")["data"]["proxy.yml"])


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _container_ports(deployment: Doc) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for c in _pod(deployment)["containers"] for p in c.get("ports", [])}


def test_every_document_parses_and_is_named() -> None:
    docs = _all_docs()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim",
                                         "NetworkPolicy"}
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"], doc
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), "two manifests with the same kind and name"


@pytest.mark.parametrize("service", [d for d in _all_docs() if d["kind"] == "Service"],
                         ids=lambda d: d["metadata"]["name"])
def test_each_service_selects_exactly_one_deployment_and_its_named_port(service: Doc) -> None:
    selector = service["spec"]["selector"]
    deployments = [d for d in _all_docs() if d["kind"] == "Deployment"
                   and _selects(selector, d["spec"]["template"]["metadata"]["labels"])]
    assert len(deployments) == 1, f"{service['metadata']['name']} selects {len(deployments)} deployments"
    ports = _container_ports(deployments[0])
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports, f"no container port named {port['targetPort']}"


def test_each_deployment_selector_matches_its_pods_and_probes_name_real_ports() -> None:
    for deployment in (d for d in _all_docs() if d["kind"] == "Deployment"):
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _selects(deployment["spec"]["selector"]["matchLabels"], template_labels)
        ports = _container_ports(deployment)
        for container in _pod(deployment)["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["port"] in ports


def test_the_proxy_backend_is_the_registry_service_and_it_stays_inside_the_cluster() -> None:
    backend = urlsplit(_proxy_yml()["backend"])
    service = _one("Service", backend.hostname or "")
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"  # never a LoadBalancer or NodePort
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == backend.port]
    registry = _one("Deployment", "registry")
    assert _container_ports(registry)[port["targetPort"]] == backend.port
    env = {e["name"]: e["value"] for e in _pod(registry)["containers"][0]["env"]}
    assert env["REGISTRY_STORAGE_DELETE_ENABLED"] == "true"
    assert env["REGISTRY_HTTP_ADDR"].endswith(f":{backend.port}")
    policy = _one("NetworkPolicy", "registry-only-from-proxy")  # only the proxy's pods may connect
    assert _selects(policy["spec"]["podSelector"]["matchLabels"], registry["spec"]["template"]["metadata"]["labels"])
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    proxy_labels = _one("Deployment", "registry-auth-proxy")["spec"]["template"]["metadata"]["labels"]
    assert _selects(peer["podSelector"]["matchLabels"], proxy_labels) and set(peer) == {"podSelector"}


def _mounts(deployment: Doc) -> dict[PurePosixPath, Doc]:
    """Mount path -> the volume behind it."""
    volumes = {v["name"]: v for v in _pod(deployment)["volumes"]}
    mounts = _pod(deployment)["containers"][0]["volumeMounts"]
    return {PurePosixPath(m["mountPath"]): volumes[m["name"]] for m in mounts}


def _source(deployment: Doc, path: str) -> tuple[Doc, str]:
    """The volume that holds ``path`` in the proxy's pod, and the key (file name) inside it."""
    target = PurePosixPath(path)
    for mount, volume in _mounts(deployment).items():
        if target.parent == mount:
            return volume, target.name
    raise AssertionError(f"{path} is not in any mounted volume")


def test_configmap_and_secret_keys_are_the_files_proxy_yml_names() -> None:
    deployment = _one("Deployment", "registry-auth-proxy")
    env = {e["name"]: e["value"] for e in _pod(deployment)["containers"][0]["env"]}
    config_volume, config_key = _source(deployment, env["REGISTRY_AUTH_PROXY_CONFIG"])  # kubectl exec finds it too
    configmap = _one("ConfigMap", config_volume["configMap"]["name"])
    assert config_key in configmap["data"]
    data = _proxy_yml()
    auth = data["auth"]
    for path in (data["tls"]["cert"], data["tls"]["key"], auth["htpasswd"], auth["groups"],
                 auth["token"]["secret_file"]):
        volume, key = _source(deployment, path)
        secret = _one("Secret", volume["secret"]["secretName"])
        assert key in secret["stringData"], f"{path}: no key {key} in secret {secret['metadata']['name']}"
    volume, _ = _source(deployment, auth["robots"])  # optional key: a missing robots file means none
    assert "secret" in volume


def test_maintenance_flag_is_on_one_volume_every_replica_shares() -> None:
    deployment = _one("Deployment", "registry-auth-proxy")
    assert deployment["spec"]["replicas"] > 1
    volume, _ = _source(deployment, _proxy_yml()["maintenance_file"])
    claim = _one("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    registry_volumes = _pod(_one("Deployment", "registry"))["volumes"]
    for volume in registry_volumes:
        if "persistentVolumeClaim" in volume:
            _one("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])


def test_config_parses_and_writes_nothing_beside_itself(tmp_path: Path) -> None:
    """The ConfigMap is mounted read-only: the default pid file beside proxy.yml would stop start-up."""
    data = _proxy_yml()
    data["tls"] = "off"  # the certificate files exist only in the cluster
    config = parse_config(data, tmp_path / "proxy.yml")
    assert config.pid_file is None
    assert str(config.maintenance_file).startswith("/var/lib/registry-auth-proxy/")
    admin_port = int(config.admin.listen.rsplit(":", 1)[1]) if config.admin.listen else None
    assert _container_ports(_one("Deployment", "registry-auth-proxy"))["admin"] == admin_port
    assert config.admin.listen.startswith("0.0.0.0:")  # the kubelet probes it from outside the container


def test_image_tag_is_what_the_documented_build_command_makes() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    build = r"docker build [^\n]*-f deploy/Dockerfile -t (\S+) \."  # this image's build, not other examples
    readme = set(re.findall(build, (ROOT / "README.md").read_text()))
    tags = readme | set(re.findall(build, (ROOT / "deploy" / "Dockerfile").read_text()))
    assert readme and tags == {f"registry-auth-proxy:{version}"}
    (container,) = _pod(_one("Deployment", "registry-auth-proxy"))["containers"]
    assert container["image"] in tags
    registry_image = _pod(_one("Deployment", "registry"))["containers"][0]["image"]
    assert "PLACEHOLDER" in (K8S / "registry.yaml").read_text() and registry_image.startswith("registry:")


def test_shipped_secrets_hold_no_usable_token_key(tmp_path: Path) -> None:
    """Applied as is, the token Secret must make the proxy refuse to start, never sign with a public key.

    Every ``*.key`` value shipped (the TLS key too) is judged as a token key would be.
    """
    secrets = [d for d in _all_docs() if d["kind"] == "Secret"]
    keys = [(s["metadata"]["name"], value) for s in secrets
            for name, value in (s.get("stringData") or {}).items() if name.endswith(".key")]
    assert any(secret == "registry-auth-proxy-token" for secret, _ in keys)
    for index, (_secret, value) in enumerate(keys):
        path = tmp_path / f"{index}.key"
        path.write_text(value)
        with pytest.raises(ValueError):
            read_token_key(path)  # what serve and check-config call
    assert not [s["metadata"]["name"] for s in secrets if s.get("data")]  # base64 `data` would hold real values
