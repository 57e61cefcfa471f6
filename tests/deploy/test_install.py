"""deploy/install.sh, run for real (as root, as CI runs) into a temporary root.

Every path install.sh writes is redirected under ``tmp_path`` (``--prefix``, ``--etc``,
``--state``, ``--bin-dir``, ``--unit-dir``, ``--no-systemd``), so the real /opt, /etc
and systemd are never touched. What does touch the machine is the system user and group
``registry-auth-proxy``: the module removes them again when it was the one that created them.
"""

from __future__ import annotations

import configparser
import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import yaml

from auth.keys import read_token_key
from tests.support.tlsfiles import write_tls_files

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "install.sh"
NAME = "registry-auth-proxy"


@dataclass(frozen=True)
class Layout:
    """Where one install.sh run puts things: the host's layout, under ``root``."""

    root: Path

    @property
    def prefix(self) -> Path:
        return self.root / "opt" / NAME

    @property
    def etc(self) -> Path:
        return self.root / "etc" / NAME

    @property
    def state(self) -> Path:
        return self.root / "var" / "lib" / NAME

    @property
    def link(self) -> Path:
        return self.root / "usr" / "local" / "bin" / NAME

    @property
    def unit(self) -> Path:
        return self.root / "etc" / "systemd" / "system" / f"{NAME}.service"

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """install.sh with this layout; fails the test with its output when it fails."""
        done = subprocess.run(
            ["bash", str(SCRIPT), "--prefix", str(self.prefix), "--etc", str(self.etc), "--state", str(self.state),
             "--bin-dir", str(self.link.parent), "--unit-dir", str(self.unit.parent), "--no-systemd", *extra],
            capture_output=True, text=True, cwd=self.root, timeout=900, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done


def _cli(command: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(command), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def _exists(kind: str) -> bool:
    try:
        (pwd.getpwnam if kind == "user" else grp.getgrnam)(NAME)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def service_account() -> Iterator[None]:
    """Leave the machine's users as they were: remove what install.sh created for this module."""
    had_user, had_group = _exists("user"), _exists("group")
    yield
    if not had_user and _exists("user"):
        subprocess.run(["userdel", NAME], check=True)
    if not had_group and _exists("group"):  # Debian's userdel already drops the user's own group
        subprocess.run(["groupdel", NAME], check=True)


@pytest.fixture(scope="module")
def installed(service_account: None) -> Iterator[tuple[Layout, str]]:
    """One first install for the module (pip makes it the slow part); tests that change it say so.

    Not under pytest's tmp_path: /tmp/pytest-of-root is 0700, and install.sh checks (as a host needs)
    that the service user can run the command, which needs every folder above the venv open to it.
    """
    root = Path(tempfile.mkdtemp(prefix="rap-install-"))
    root.chmod(0o755)
    try:
        started = time.monotonic()
        done = Layout(root).run()
        print(f"first install: {time.monotonic() - started:.1f} s")
        yield Layout(root), done.stdout
    finally:
        shutil.rmtree(root)


def _mode_owner(path: Path) -> tuple[int, str, str]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def test_the_command_is_on_the_path_and_runs(installed: tuple[Layout, str]) -> None:
    layout, _ = installed
    assert layout.link.is_symlink()
    assert Path(os.readlink(layout.link)) == layout.prefix / "bin" / NAME
    version = _cli(layout.link, "--version", cwd=layout.root)
    assert version.returncode == 0 and version.stdout.startswith(f"{NAME} "), version.stderr
    assert (layout.prefix / "pyvenv.cfg").is_file()
    user = pwd.getpwnam(NAME)
    assert user.pw_shell == "/usr/sbin/nologin" and not Path(user.pw_dir).exists()
    assert grp.getgrgid(user.pw_gid).gr_name == NAME


def test_the_service_user_can_run_the_command_and_read_the_config(installed: tuple[Layout, str]) -> None:
    layout, _ = installed
    check = subprocess.run(["runuser", "-u", NAME, "--", str(layout.link), "check-config",
                            "--config", str(layout.etc / "proxy.yml")],
                           capture_output=True, text=True, cwd="/", timeout=120, check=False)
    # It got as far as the missing certificate: the venv ran and proxy.yml was readable to the group.
    assert check.returncode == 2 and "tls.cert: expected an existing file" in check.stderr, check.stderr
    assert "cannot read" not in check.stderr


def test_config_is_owned_by_root_and_readable_by_the_service_group_only(installed: tuple[Layout, str]) -> None:
    layout, _ = installed
    assert _mode_owner(layout.etc) == (0o750, "root", NAME)
    assert _mode_owner(layout.state) == (0o750, "root", NAME)
    for name in ("proxy.yml", "users.htpasswd", "users.groups", "token.key"):
        assert _mode_owner(layout.etc / name) == (0o640, "root", NAME), name
    assert (layout.etc / "users.htpasswd").read_bytes() == b""
    assert (layout.etc / "users.groups").read_bytes() == b""
    assert len(read_token_key(layout.etc / "token.key")) >= 32  # the proxy's own judgement of a random key


def test_proxy_yml_is_the_repository_file_set_up_for_this_host(installed: tuple[Layout, str]) -> None:
    layout, _ = installed
    data = yaml.safe_load((layout.etc / "proxy.yml").read_text())
    repo = yaml.safe_load((REPO / "proxy.yml").read_text())
    assert data["listen"] == "0.0.0.0:5043" and repo["listen"] != data["listen"]
    assert data["pid_file"] == f"/run/{NAME}/{NAME}.pid"
    assert data["maintenance_file"] == str(layout.state / "maintenance")
    assert data["auth"]["token"]["secret_file"] == "token.key"
    assert data["tls"] == {"cert": "server.crt", "key": "server.key"}
    assert data["access"] == repo["access"] and data["backend"] == repo["backend"]


def test_without_a_certificate_it_says_what_is_missing_and_does_not_start(installed: tuple[Layout, str]) -> None:
    layout, stdout = installed
    config = layout.etc / "proxy.yml"
    check = _cli(layout.link, "check-config", "--config", str(config), cwd=layout.root)
    assert check.returncode == 2
    assert f"tls.cert: expected an existing file, found '{layout.etc / 'server.crt'}'" in check.stderr
    assert "the service is NOT started" in stdout and "tls.cert" in stdout
    assert f"check-config --config {config}" in stdout  # the next steps name this install's config


def test_with_a_certificate_the_installed_config_checks_ok(installed: tuple[Layout, str], tmp_path: Path) -> None:
    layout, _ = installed
    etc = tmp_path / "etc"  # a copy: the module's install stays without a certificate
    shutil.copytree(layout.etc, etc)
    tls = write_tls_files(tmp_path / "tls")
    shutil.copy(tls.server_cert, etc / "server.crt")
    shutil.copy(tls.server_key, etc / "server.key")
    check = _cli(layout.link, "check-config", "--config", str(etc / "proxy.yml"), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "listen:    https://0.0.0.0:5043" in check.stdout
    assert "config OK" in check.stdout and "secret_file" not in check.stdout  # the generated key is used


def test_the_unit_runs_the_installed_command_and_documents_existing_files(installed: tuple[Layout, str]) -> None:
    layout, _ = installed
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string(layout.unit.read_text())
    docs = unit["Unit"]["Documentation"].split()
    assert len(docs) == 2 and all(d.startswith("file://") for d in docs)
    for doc in docs:
        assert Path(doc.removeprefix("file://")).is_file(), doc
    service = unit["Service"]
    command, *args = service["ExecStart"].split()
    assert command == str(layout.prefix / "bin" / NAME) and os.access(command, os.X_OK)
    assert args == ["serve", "--config", str(layout.etc / "proxy.yml")]
    assert service["User"] == NAME and service["Group"] == NAME
    assert service["RuntimeDirectory"] == NAME  # /run/registry-auth-proxy, where pid_file points
    assert f"/run/{NAME}" in service["ReadWritePaths"].split()
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert stat.S_IMODE(layout.unit.stat().st_mode) == 0o644


def test_a_second_run_upgrades_the_venv_and_keeps_every_config_file(installed: tuple[Layout, str]) -> None:
    """Changes the module's install (config edited, a venv file broken): the other tests only read."""
    layout, _ = installed
    config = layout.etc / "proxy.yml"
    config.write_text(config.read_text().replace("backend: http://127.0.0.1:5000", "backend: http://10.9.8.7:5000")
                      + "# edited by the operator\n")
    # As `htpasswd -B` would: `user add` needs the whole config to load, the certificate included.
    (layout.etc / "users.htpasswd").write_bytes(b"mark:" + bcrypt.hashpw(b"pusherpwd", bcrypt.gensalt(4)) + b"\n")
    before = {p.name: p.read_bytes() for p in layout.etc.iterdir()}
    assert b"mark:" in before["users.htpasswd"] and b"10.9.8.7" in before["proxy.yml"]
    site = _cli(layout.prefix / "bin" / "python", "-c", "import proxy.cli; print(proxy.cli.__file__)", cwd=layout.root)
    installed_module = Path(site.stdout.strip())
    installed_module.write_text("raise SystemExit('stale venv')\n")

    started = time.monotonic()
    done = layout.run()
    print(f"upgrade: {time.monotonic() - started:.1f} s")

    assert {p.name: p.read_bytes() for p in layout.etc.iterdir()} == before
    for name in before:
        assert f"kept {layout.etc / name} " in done.stdout, name
    assert _mode_owner(layout.etc / "users.htpasswd") == (0o640, "root", NAME)
    assert "upgrading the venv" in done.stdout
    assert installed_module.read_bytes() == (REPO / "proxy" / "cli" / "__init__.py").read_bytes()
    assert _cli(layout.link, "--version", cwd=layout.root).returncode == 0


def _fake_install(layout: Layout) -> None:
    """What --uninstall looks at, without pip: a venv marker, the command, link, unit and config."""
    (layout.prefix / "bin").mkdir(parents=True)
    (layout.prefix / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (layout.prefix / "bin" / NAME).write_text("#!/bin/sh\n")
    layout.link.parent.mkdir(parents=True)
    layout.link.symlink_to(layout.prefix / "bin" / NAME)
    layout.unit.parent.mkdir(parents=True)
    layout.unit.write_text("[Unit]\n")
    layout.etc.mkdir(parents=True)
    (layout.etc / "proxy.yml").write_text("listen: 0.0.0.0:5043\n")
    layout.state.mkdir(parents=True)


def test_uninstall_removes_venv_link_and_unit_and_keeps_the_config(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    _fake_install(layout)
    done = layout.run("--uninstall")
    assert not layout.prefix.exists() and not layout.link.is_symlink() and not layout.unit.exists()
    assert (layout.etc / "proxy.yml").read_text() == "listen: 0.0.0.0:5043\n" and layout.state.is_dir()
    assert f"kept {layout.etc}" in done.stdout


def test_uninstall_never_removes_a_prefix_that_is_not_a_venv(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    _fake_install(layout)
    (layout.prefix / "pyvenv.cfg").unlink()
    done = layout.run("--uninstall")
    assert (layout.prefix / "bin" / NAME).is_file()
    assert f"kept {layout.prefix}: not a venv" in done.stdout
