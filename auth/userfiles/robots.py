"""Robot accounts (``robot$NAME``): THE parser of the robots file, secrets, scopes and pure line edits.

Why robots: a CI job pushing with a person's password holds everything that
person may do, forever. A robot holds only its scopes, until it expires or is
removed. The file (``auth.robots``) has one robot per line, ``NAME: {JSON}``:
a YAML mapping and a line format at once, so the CLI edits it line by line
under the user files' lock (``auth.userfiles.atomic``), and a corrupt line
disables that one robot with a warning (as ``htpasswd`` does), never the file::

    ci-a: {"secret": "sha256:<hex>", "push": ["team-a/**"], "pull": [], "delete": [], "groups": [],
           "created": "2025-01-01T00:00:00Z", "expires": "2025-04-01T00:00:00Z", "description": "..."}

Only SHA-256 of the secret is stored: secrets are 256 random bits, so a fast
hash is as safe as bcrypt here and a login costs microseconds, with no pool.

The rights rule, decided here and applied by ``auth.access``: a robot is a
``users``-level identity (no groups from the group file; only the groups
named on the robot), and its scopes are an allow-list WITHIN what ``access``
gives that identity. A push or delete glob also grants pull on it: no client
can push without reading (docker HEADs every blob first; a push token asks
for ``pull,push``), nor delete a tag without reading its digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from auth.access import Action
from auth.globs import GlobError, compile_globs, first_match, glob_to_regex
from auth.userfiles.robotsecrets import (  # noqa: F401  re-exported: the CLI and tests read them as ``robots.*``
    _DUMMY,
    _HASH_RE,
    HASH_PREFIX,
    MAX_LIFETIME,
    check_secret,
    format_time,
    hash_secret,
    new_secret,
    parse_expiry,
    parse_time,
)

ROBOT_PREFIX = "robot$"  # Harbor's convention: CI tools that know it work unchanged
NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?")
FIELDS = ("secret", "push", "pull", "delete", "groups", "created", "expires", "description")


def robot_name(user: str) -> str | None:
    """NAME for ``robot$NAME``; None for anything else (a person, or anonymous)."""
    return user[len(ROBOT_PREFIX):] if user.startswith(ROBOT_PREFIX) else None


def user_class(user: str | None) -> str:
    """``person``, ``robot`` or ``anonymous``: the metrics label (names themselves would be unbounded)."""
    if not user:
        return "anonymous"
    return "robot" if user.startswith(ROBOT_PREFIX) else "person"


def validate_name(name: str) -> str:
    """``name`` if usable as a robot name (lowercase, digits, ``._+-``, at most 64), else ValueError."""
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"robot name {name!r}: use 1-64 of a-z 0-9 . _ + -, starting and ending with a "
                         "letter or digit")
    return name


# -- secrets ----------------------------------------------------------------------
# -- scopes -------------------------------------------------------------------------
@dataclass(frozen=True)
class RobotScopes:
    """What one robot may do: globs per action (``auth.globs``); push or delete imply pull."""

    robot: str  # the user name, robot$NAME: every refusal names it
    pull: tuple[str, ...] = ()
    push: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    _compiled: dict[Action, re.Pattern[str] | None] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Compiled once per file read (raises GlobError): a check is one fullmatch.
        object.__setattr__(self, "_compiled", {a: compile_globs(self.globs(a)) for a in Action})

    def globs(self, action: Action) -> tuple[str, ...]:
        if action is Action.PULL:
            return tuple(dict.fromkeys(self.pull + self.push + self.delete))
        return self.push if action is Action.PUSH else self.delete

    def allows(self, action: Action, repository: str | None) -> bool:
        """``repository`` None is the catalog: listed (filtered by pull) for a robot that may pull anything."""
        if repository is None:
            return action is Action.PULL and bool(self.globs(Action.PULL))
        return first_match(self._compiled[action], repository) is not None

    def lacking(self, action: Action, repository: str | None) -> str:
        """The refusal text: names the robot and the scope it lacks (safe: both are validated names)."""
        what = repository or "the catalog"
        have = ", ".join(self.globs(action)) or "none"
        return (f"{action.value} on {what} denied: robot {self.robot!r} has no {action.value} scope "
                f"matching {what} (its {action.value} scopes: {have})")

    def describe(self) -> str:
        parts = [f"{a.value} {','.join(g)}" for a, g in
                 ((Action.PUSH, self.push), (Action.PULL, self.pull), (Action.DELETE, self.delete)) if g]
        return "; ".join(parts) or "none"


# -- robots and the file ---------------------------------------------------------------
@dataclass(frozen=True)
class Robot:
    name: str
    secret_hash: str
    scopes: RobotScopes
    groups: frozenset[str] = frozenset()
    created: float = 0.0
    expires: float = 0.0
    description: str = ""

    @property
    def username(self) -> str:
        return ROBOT_PREFIX + self.name

    def expired(self, now: float) -> bool:
        return now >= self.expires

    def fingerprint(self) -> str:
        """What a token carries: changes with the secret, the expiry, the scopes and the groups."""
        text = "\0".join([self.username, self.secret_hash, format_time(self.expires), self.scopes.describe(),
                          ",".join(sorted(self.groups))])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_entry(self) -> dict[str, object]:
        return {"secret": self.secret_hash, "push": list(self.scopes.push), "pull": list(self.scopes.pull),
                "delete": list(self.scopes.delete), "groups": sorted(self.groups),
                "created": format_time(self.created), "expires": format_time(self.expires),
                "description": self.description}


def make_robot(name: str, secret_hash: str, *, push: tuple[str, ...] = (), pull: tuple[str, ...] = (),
               delete: tuple[str, ...] = (), groups: frozenset[str] = frozenset(), created: float = 0.0,
               expires: float, description: str = "") -> Robot:
    """A validated robot (ValueError with the reason); the one constructor the parser and the CLI use."""
    validate_name(name)
    if not _HASH_RE.fullmatch(secret_hash):
        raise ValueError("secret is not a sha256:<64 hex> hash")
    for glob in push + pull + delete:
        try:
            glob_to_regex(glob)
        except GlobError as exc:
            raise ValueError(f"scope {exc}") from None
    if not (push or pull or delete):
        raise ValueError("no scope: give at least one of push, pull, delete")
    if any(not g or any(c.isspace() or c in ":,#" for c in g) for g in groups):
        raise ValueError("a group name must be non-empty without spaces, ':', ',' or '#'")
    if any(ch in description for ch in "\r\n"):
        raise ValueError("description must be one line")
    scopes = RobotScopes(ROBOT_PREFIX + name, pull=pull, push=push, delete=delete)
    return Robot(name, secret_hash, scopes, groups, created, expires, description)


def _strings(entry: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key!r} must be a list of strings")
    return tuple(value)


def robot_from_entry(name: str, entry: object) -> Robot:
    validate_name(name)
    if not isinstance(entry, dict):
        raise ValueError("expected a {...} object after the name")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    secret, created, expires, description = (entry.get(k) for k in ("secret", "created", "expires", "description"))
    if not isinstance(secret, str) or not isinstance(expires, str):
        raise ValueError("'secret' and 'expires' are required strings")
    try:
        when = parse_time(expires), parse_time(created) if isinstance(created, str) else 0.0
    except ValueError:
        raise ValueError("'expires'/'created' must be ISO 8601 times, e.g. 2025-04-01T00:00:00Z") from None
    return make_robot(name, secret, push=_strings(entry, "push"), pull=_strings(entry, "pull"),
                      delete=_strings(entry, "delete"), groups=frozenset(_strings(entry, "groups")),
                      created=when[1], expires=when[0],
                      description=description if isinstance(description, str) else "")


def parse_line(line: str) -> tuple[str, Robot] | None:
    """``(name, robot)`` for an entry, None for a blank or ``#`` line; ValueError (the reason) otherwise.

    The name is the text before the first ``:``, so a line whose object is
    corrupt still names the robot it disables.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    name, sep, rest = text.partition(":")
    if not sep:
        raise ValueError("no 'NAME: {...}' here")
    try:
        entry = json.loads(rest)
    except json.JSONDecodeError:
        raise ValueError("the object after the name is not valid JSON") from None
    return name.strip(), robot_from_entry(name.strip(), entry)


def _line_name(line: str) -> str | None:
    text = line.strip()
    return None if not text or text.startswith("#") or ":" not in text else text.partition(":")[0].strip()


def format_line(robot: Robot) -> str:
    # ensure_ascii: the line is then both JSON and YAML, whatever the description holds
    return f"{robot.name}: {json.dumps(robot.as_entry(), ensure_ascii=True)}"


@dataclass(frozen=True)
class RobotData:
    """Parsed file: usable robots by name, names whose line was refused, and why."""

    robots: Mapping[str, Robot] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()

    def login(self, user: str, secret: str, now: float) -> Robot | None:
        """The robot for ``robot$NAME`` + secret, unexpired at ``now``; a miss costs what a hit does."""
        name = robot_name(user)
        robot = self.robots.get(name) if name is not None else None
        ok = check_secret(secret, robot.secret_hash if robot is not None else _DUMMY)
        if robot is None or not ok or robot.expired(now):
            return None
        return robot


def parse_robots(text: str, source: str = "robots") -> RobotData:
    """Read a whole file; problems become ``SOURCE:LINE: ...`` warnings and disable that robot."""
    robots: dict[str, Robot] = {}
    disabled: set[str] = set()
    warnings: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            parsed = parse_line(raw)
        except ValueError as exc:
            name = _line_name(raw)
            if name:
                disabled.add(name)
                robots.pop(name, None)
            warnings.append(f"{source}:{number}: {exc}; robot {name!r} disabled" if name
                            else f"{source}:{number}: {exc}; line ignored")
            continue
        if parsed is None:
            continue
        name, robot = parsed
        if name in robots or name in disabled:
            warnings.append(f"{source}:{number}: robot {name!r} is defined twice; the first line counts")
            continue
        robots[name] = robot
    return RobotData(robots, frozenset(disabled), tuple(warnings))


def expiry_warnings(data: RobotData, now: float, within: float = 7 * 86400) -> list[str]:
    """Robots that expired or expire within ``within`` seconds: check-config's reminder."""
    out = []
    for robot in sorted(data.robots.values(), key=lambda r: r.expires):
        if robot.expired(now):
            out.append(f"robot {robot.username} expired on {format_time(robot.expires)}: its logins fail; "
                       f"`robot rotate {robot.name} --expires 90d` or `robot remove {robot.name}`")
        elif robot.expires - now <= within:
            out.append(f"robot {robot.username} expires on {format_time(robot.expires)} "
                       f"(in {(robot.expires - now) / 86400:.1f} days): `robot rotate {robot.name} --expires 90d`")
    return out


# -- pure line edits ------------------------------------------------------------------
def find(lines: list[str], name: str) -> Robot | None:
    """The robot ``name`` as the proxy reads it (None if absent or disabled)."""
    return parse_robots("\n".join(lines)).robots.get(name)


def has_robot(lines: list[str], name: str) -> bool:
    """True if some line names ``name``, readable or not (a corrupt line still holds the name)."""
    return any(_line_name(line) == name for line in lines)


def set_robot(lines: list[str], robot: Robot) -> list[str]:
    """Replace the first line of the robot (dropping later duplicates) or append one."""
    at = next((i for i, line in enumerate(lines) if _line_name(line) == robot.name), len(lines))
    return [*lines[:at], format_line(robot), *remove_robot(lines[at:], robot.name)]


def remove_robot(lines: list[str], name: str) -> list[str]:
    return [line for line in lines if _line_name(line) != name]
