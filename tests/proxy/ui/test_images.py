"""Manifests and configs read defensively: a wrong type is an absent field, never an error page."""

from __future__ import annotations

import json

import pytest

from proxy.ui.images import ManifestError, parse_config, parse_manifest

D = "sha256:" + "a" * 64
E = "sha256:" + "b" * 64


def test_an_image_manifest_and_its_compressed_size() -> None:
    body = json.dumps({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"digest": D, "size": 100}, "layers": [{"digest": E, "size": 900},
                                                                       {"digest": E, "size": 1000}]}).encode()
    manifest = parse_manifest(body, D)
    assert not manifest.is_index and manifest.compressed_size == 2000 and manifest.size == len(body)


def test_sizes_that_are_not_sizes_make_the_size_unknown() -> None:
    for size in (-1, True, "12", 1.5, None):
        body = json.dumps({"config": {"digest": D, "size": 1}, "layers": [{"digest": E, "size": size}]}).encode()
        assert parse_manifest(body, D).compressed_size is None


def test_an_index_lists_platforms_without_attestations() -> None:
    body = json.dumps({"manifests": [
        {"digest": D, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": E, "platform": {"os": "unknown", "architecture": "unknown"}},
        {"digest": "not-a-digest", "platform": {"os": "linux", "architecture": "amd64"}},
        "junk"]}).encode()
    manifest = parse_manifest(body, D, "application/vnd.oci.image.index.v1+json; charset=x")
    assert manifest.is_index and manifest.compressed_size is None
    assert [p.platform for p in manifest.platforms] == ["linux/arm64/v8"]
    assert manifest.media_type == "application/vnd.oci.image.index.v1+json"


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'"x"', b"\xff\xfe"])
def test_what_is_not_an_object_is_refused(body: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(body, D)
    with pytest.raises(ManifestError):
        parse_config(body)


def test_a_config_of_the_right_shape() -> None:
    config = parse_config(json.dumps({
        "created": "2024-01-01T00:00:00Z", "os": "linux", "architecture": "amd64",
        "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["A=1", "B=x=y"],
                   "ExposedPorts": {"8080/tcp": {}, "53/udp": {}}, "Labels": {"b": "2", "a": "1"},
                   "User": "app", "WorkingDir": "/srv"},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "RUN x", "empty_layer": True}]}).encode())
    assert config.platform == "linux/amd64" and config.entrypoint == ("/bin/sh", "-c") and config.cmd == ("echo hi",)
    assert config.env == ("A=1", "B=x=y") and config.ports == ("53/udp", "8080/tcp")
    assert config.labels == (("a", "1"), ("b", "2")) and (config.user, config.workdir) == ("app", "/srv")
    assert config.history[0].created_by == "RUN x" and config.history[0].empty_layer


def test_a_config_of_the_wrong_shape_shows_less_rather_than_failing() -> None:
    config = parse_config(json.dumps({
        "created": 5, "os": ["x"], "config": {"Entrypoint": "sh", "Cmd": [1, "ok"], "Env": "A=1",
                                              "ExposedPorts": ["80"], "Labels": {"a": 1, "b": ["x"], "c": "ok"},
                                              "User": 0},
        "history": ["x", {"created_by": 5, "empty_layer": "yes"}]}).encode())
    assert config.created is None and config.platform is None and config.entrypoint is None
    assert config.cmd == ("ok",) and config.env == () and config.ports == ()
    assert config.labels == (("c", "ok"),) and config.user == ""
    assert len(config.history) == 1 and config.history[0].created_by == "" and not config.history[0].empty_layer
    assert parse_config(b'{"config": "nope"}').labels == ()


def test_huge_strings_are_cut_for_display() -> None:
    config = parse_config(json.dumps({"config": {"Labels": {"big": "x" * 100_000}}}).encode())
    assert len(config.labels[0][1]) < 5000
