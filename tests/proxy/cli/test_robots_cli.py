"""``robot add|list|show|rotate|remove`` end to end, concurrent adds, and check-config's expiry reminder."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auth.userfiles import robots as rf
from auth.userfiles.atomic import read_lines
from proxy.cli import build_parser
from proxy.cli.checks import robot_warnings
from proxy.config import parse_config

ROOT = Path(__file__).resolve().parents[3]


def run(argv: list[str]) -> tuple[int, str, str]:
    """The real parser and handler, streams captured."""
    args = build_parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = args.func(args)
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "robots.yml"


def robots(path: Path) -> rf.RobotData:
    return rf.parse_robots("\n".join(read_lines(path)))


def add(path: Path, name: str = "ci-a", *extra: str) -> dict[str, str]:
    code, out, err = run(["robot", "add", name, "--push", "team-a/**", "--expires", "90d", "--json",
                          "--robots", str(path), *extra])
    assert code == 0, err
    return json.loads(out)


def test_add_prints_the_secret_once_and_stores_only_its_hash(path: Path) -> None:
    before = time.time()
    made = add(path, "ci-a", "--pull", "base/*,tools/*", "--description", "gitlab: team-a")
    assert set(made) == {"username", "secret", "expires"} and made["username"] == "robot$ci-a"
    text = path.read_text()
    assert made["secret"] not in text and rf.hash_secret(made["secret"]) in text
    robot = robots(path).robots["ci-a"]
    assert robot.scopes.push == ("team-a/**",) and robot.scopes.pull == ("base/*", "tools/*")
    assert robot.description == "gitlab: team-a"
    assert before + 90 * 86400 - 2 <= robot.expires <= time.time() + 90 * 86400
    assert robots(path).login("robot$ci-a", made["secret"], time.time()) == robot
    assert path.stat().st_mode & 0o777 == 0o640


def test_add_without_json_prints_username_and_secret_lines(path: Path) -> None:
    code, out, err = run(["robot", "add", "ci", "--push", "a/**", "--expires", "1d", "--robots", str(path)])
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["username"].strip() == "robot$ci"
    assert robots(path).login("robot$ci", lines["secret"].strip(), time.time()) is not None
    assert "shown only now" in err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["ci-a", "--push", "b/**", "--expires", "1d"], 1, "already exists"),
        (["CI", "--push", "a/**", "--expires", "1d"], 2, "robot name"),
        (["ci-b", "--push", "A/**", "--expires", "1d"], 2, "scope"),
        (["ci-b", "--expires", "1d"], 2, "no scope"),
        (["ci-b", "--push", "a/**", "--expires", "yesterday"], 2, "duration"),
        (["ci-b", "--push", "a/**", "--expires", "2001-01-01"], 2, "not in the future"),
    ],
)
def test_add_refuses_bad_input_and_leaves_the_file_alone(path: Path, argv: list[str], code: int,
                                                         message: str) -> None:
    add(path)
    before = path.read_text()
    got, out, err = run(["robot", "add", *argv, "--robots", str(path)])
    assert (got, out) == (code, "") and message in err
    assert path.read_text() == before


def test_rotate_changes_the_secret_and_keeps_the_scopes(path: Path) -> None:
    old = add(path, "ci-a", "--group", "pusher")
    before = robots(path).robots["ci-a"]
    code, out, _ = run(["robot", "rotate", "ci-a", "--json", "--robots", str(path)])
    assert code == 0
    new = json.loads(out)
    after = robots(path).robots["ci-a"]
    assert new["secret"] != old["secret"] and new["expires"] == old["expires"]
    assert (after.scopes, after.groups, after.created) == (before.scopes, before.groups, before.created)
    assert robots(path).login("robot$ci-a", old["secret"], time.time()) is None
    assert robots(path).login("robot$ci-a", new["secret"], time.time()) is not None
    code, out, _ = run(["robot", "rotate", "ci-a", "--expires", "2d", "--json", "--robots", str(path)])
    assert code == 0 and robots(path).robots["ci-a"].expires < before.expires
    assert run(["robot", "rotate", "ghost", "--robots", str(path)])[0] == 1


def test_rotating_an_expired_robot_needs_a_new_expiry(path: Path) -> None:
    assert run(["robot", "add", "ci", "--push", "a", "--expires", "1s", "--robots", str(path)])[0] == 0
    time.sleep(1.1)
    code, _, err = run(["robot", "rotate", "ci", "--robots", str(path)])
    assert code == 1 and "pass --expires" in err
    assert run(["robot", "rotate", "ci", "--expires", "1d", "--robots", str(path)])[0] == 0


def test_remove_drops_the_robot_and_nothing_else(path: Path) -> None:
    add(path, "ci-a")
    add(path, "ci-b")
    code, out, _ = run(["robot", "remove", "ci-a", "--robots", str(path)])
    assert code == 0 and "removed robot robot$ci-a" in out
    assert set(robots(path).robots) == {"ci-b"} and read_lines(path)[0].startswith("#")
    assert run(["robot", "remove", "ci-a", "--robots", str(path)])[0] == 1


def test_list_and_show_mark_expired_robots_and_never_print_hashes(path: Path) -> None:
    add(path, "ci-a", "--description", "team a")
    assert run(["robot", "add", "old", "--pull", "x/*", "--expires", "1s", "--robots", str(path)])[0] == 0
    with path.open("a") as fh:
        fh.write("broken: {nope\n")
    time.sleep(1.1)
    code, out, err = run(["robot", "list", "--robots", str(path)])
    rows = out.splitlines()
    assert code == 0 and len(rows) == 3 and "sha256" not in out
    assert rows[0].startswith("robot$ci-a\tpush team-a/**\tcreated ") and "\texpires " in rows[0]
    assert rows[0].endswith("team a")
    assert rows[1].startswith("robot$old\tpull x/*") and "EXPIRED expires" in rows[1]
    assert rows[2] == "robot$broken\tDISABLED (corrupt line; see the warning)" and "broken" in err
    listed = json.loads(run(["robot", "list", "--json", "--robots", str(path)])[1])
    assert [(r["username"], r["expired"]) for r in listed] == [("robot$ci-a", False), ("robot$old", True)]
    code, out, _ = run(["robot", "show", "ci-a", "--robots", str(path)])
    assert code == 0 and "sha256" not in out and "effective pull:" in out and "team a" in out
    shown = json.loads(run(["robot", "show", "ci-a", "--json", "--robots", str(path)])[1])
    assert shown["push"] == ["team-a/**"] and shown["expired"] is False
    assert run(["robot", "show", "ghost", "--robots", str(path)])[0] == 1


def test_the_path_comes_from_the_config_and_null_turns_robots_off(tmp_path: Path) -> None:
    config = tmp_path / "proxy.yml"
    config.write_text("backend: http://127.0.0.1:9\nadmin: off\nauth: {robots: ci-robots.yml}\n")
    code, _, err = run(["robot", "add", "ci", "--push", "team-a/**", "--expires", "1d", "--config", str(config)])
    assert code == 0 and "ci" in robots(tmp_path / "ci-robots.yml").robots
    # the default access gives push to [pusher] only: the operator is told before CI finds out
    assert "warning: access gives push on team-a/x only to [pusher]" in err and "--group pusher" in err
    code, _, err = run(["robot", "add", "ci2", "--push", "team-a/**", "--group", "pusher", "--expires", "1d",
                        "--config", str(config)])
    assert code == 0 and "warning" not in err
    config.write_text("backend: http://127.0.0.1:9\nadmin: off\nauth: {robots: null}\n")
    code, _, err = run(["robot", "list", "--config", str(config)])
    assert code == 2 and "robot accounts are off" in err


def test_ten_concurrent_cli_adds_all_land(path: Path) -> None:
    """Ten processes at once, under the user files' lock: none loses another's line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "proxy", "robot", "add", f"ci-{i}", "--push", f"team-{i}/**",
                               "--expires", "1d", "--json", "--robots", str(path)],
                              env=env, cwd=path.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(10)]
    secrets = {}
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        secrets[i] = json.loads(out)["secret"]
    data = robots(path)
    assert sorted(data.robots) == sorted(f"ci-{i}" for i in range(10)) and not data.warnings
    assert all(data.login(f"robot$ci-{i}", s, time.time()) is not None for i, s in secrets.items())
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_check_config_names_robots_that_expired_or_expire_within_a_week(tmp_path: Path) -> None:
    now = datetime(2030, 1, 10, tzinfo=UTC)
    lines = [rf.format_line(rf.make_robot(name, rf.hash_secret("x"), push=("a",), expires=now.timestamp() + days
                                          * 86400)) for name, days in (("old", -1), ("soon", 3), ("fine", 30))]
    (tmp_path / "robots.yml").write_text("\n".join([*lines, "bad: {"]) + "\n")
    config = parse_config({"backend": "http://127.0.0.1:9", "admin": "off"}, tmp_path / "proxy.yml")
    warnings = robot_warnings(config, now)
    assert len(warnings) == 3
    assert "robot 'bad' disabled" in warnings[0]
    assert warnings[1].startswith("robot robot$old expired on 2030-01-09")
    assert warnings[2].startswith("robot robot$soon expires on 2030-01-13")
    (tmp_path / "robots.yml").unlink()
    assert robot_warnings(config, now) == []
