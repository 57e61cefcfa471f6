"""The shipped deployment examples stay consistent with the code (shape only; nothing is deployed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from proxy.config import parse_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]


def test_k8s_deployment_runs_three_non_root_replicas_with_probes() -> None:
    (deployment,) = _docs("deployment.yaml")
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {s["metadata"]["name"] for s in _docs("secrets.yaml")}
    assert {d["kind"] for d in _docs("service.yaml")} >= {"Service"}


def test_k8s_proxy_config_is_valid(tmp_path: Path) -> None:
    (configmap,) = _docs("configmap.yaml")
    data = yaml.safe_load(configmap["data"]["proxy.yml"])
    data["tls"] = "off"  # the certificate files exist only in the cluster
    config = parse_config(data, tmp_path / "proxy.yml")
    assert config.admin.listen == "0.0.0.0:9102" and config.auth.token.secret_file is not None


def test_systemd_unit_is_sandboxed() -> None:
    unit = (DEPLOY / "registry-auth-proxy.service").read_text()
    lines = {line.strip() for line in unit.splitlines()}
    for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                      "CapabilityBoundingSet=", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert directive in lines, directive
    assert any(line.startswith("ReadWritePaths=") for line in lines)
    assert not any(line.startswith("AmbientCapabilities=") for line in lines)  # port 5043 needs none


def test_dockerfile_is_slim_and_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "ARG BASE=registry-auth-proxy-base:bookworm" in text  # deploy/build-base.sh; no registry pull
    assert "\nUSER 10001" in text
