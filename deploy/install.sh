#!/usr/bin/env bash
# Install (or upgrade) registry-auth-proxy on this host. Run as root from a clone or an
# unpacked source tree:   bash deploy/install.sh            (again later: upgrades in place)
#
#   /opt/registry-auth-proxy           venv with the package (+ share/doc/README.md, SECURITY.md)
#   /usr/local/bin/registry-auth-proxy symlink to the venv's command
#   /etc/registry-auth-proxy           proxy.yml, users.htpasswd, users.groups, token.key
#                                      (root:registry-auth-proxy; created only when absent, never overwritten)
#   /var/lib/registry-auth-proxy       the maintenance flag (written by root's CLI, read by the service)
#   /etc/systemd/system/registry-auth-proxy.service, user and group registry-auth-proxy
#
# Options (the paths exist so a test can install into a temporary root):
#   --prefix DIR    venv              (default /opt/registry-auth-proxy)
#   --etc DIR       configuration     (default /etc/registry-auth-proxy)
#   --state DIR     maintenance flag  (default /var/lib/registry-auth-proxy)
#   --bin-dir DIR   command symlink   (default /usr/local/bin)
#   --unit-dir DIR  systemd unit      (default /etc/systemd/system)
#   --python PY     interpreter for the venv, >= 3.11 (default /usr/bin/python3: the service user must be
#                   able to run it, and ProtectHome=yes hides /root and /home, so never a pyenv under /root)
#   --no-systemd    never call systemctl; print the commands instead
#   --uninstall     remove venv, symlink and unit; keep configuration, state and the user
# pip takes its index from the usual places (PIP_INDEX_URL, /etc/pip.conf) for offline mirrors.
set -euo pipefail

NAME=registry-auth-proxy
PREFIX=/opt/$NAME ETC=/etc/$NAME STATE=/var/lib/$NAME BIN_DIR=/usr/local/bin UNIT_DIR=/etc/systemd/system
PYTHON=/usr/bin/python3 SYSTEMD=auto UNINSTALL=no
RUN_DIR=/run/$NAME  # fixed: the unit's RuntimeDirectory= is always under /run

usage() { sed -n '2,/^set -euo/s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
die() { echo "install.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --prefix|--etc|--state|--bin-dir|--unit-dir|--python)
      [ $# -ge 2 ] || die "$1 needs a value"
      case $1 in
        --prefix) PREFIX=$2 ;; --etc) ETC=$2 ;; --state) STATE=$2 ;;
        --bin-dir) BIN_DIR=$2 ;; --unit-dir) UNIT_DIR=$2 ;; --python) PYTHON=$2 ;;
      esac
      shift 2 ;;
    --no-systemd) SYSTEMD=no; shift ;;
    --uninstall) UNINSTALL=yes; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (it creates a system user and root-owned files)"
for dir in "$PREFIX" "$ETC" "$STATE" "$BIN_DIR" "$UNIT_DIR"; do
  # The paths go into a systemd unit and a YAML file unquoted, and the venv may be removed: plain absolute only.
  [[ $dir =~ ^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$ && $dir != *..* ]] || die "not a plain absolute path: $dir"
done
[ "$PREFIX" != /opt ] && [ "$PREFIX" != /usr ] || die "--prefix must be a folder of its own, not $PREFIX"
if [ "$SYSTEMD" = auto ]; then
  if [ -d /run/systemd/system ]; then SYSTEMD=yes; else SYSTEMD=no; fi
fi
SRC=$(cd "$(dirname "$0")/.." && pwd)
UNIT=$UNIT_DIR/$NAME.service
LINK=$BIN_DIR/$NAME

uninstall() {
  if [ "$SYSTEMD" = yes ]; then
    systemctl disable --now "$NAME" 2>/dev/null || true
  fi
  if [ -e "$UNIT" ]; then rm -f "$UNIT" && echo "removed $UNIT"; fi
  if [ "$SYSTEMD" = yes ]; then systemctl daemon-reload; fi
  if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$PREFIX/bin/$NAME" ]; then rm -f "$LINK" && echo "removed $LINK"; fi
  if [ -f "$PREFIX/pyvenv.cfg" ]; then rm -rf "$PREFIX" && echo "removed $PREFIX"
  elif [ -e "$PREFIX" ]; then echo "kept $PREFIX: not a venv, not removing it"; fi
  echo "kept $ETC and $STATE (configuration, users, key, maintenance flag) and the user $NAME"
}
if [ "$UNINSTALL" = yes ]; then uninstall; exit 0; fi

[ -f "$SRC/pyproject.toml" ] && grep -q "^name = \"$NAME\"" "$SRC/pyproject.toml" \
  || die "$SRC is not a $NAME source tree (run deploy/install.sh from a clone)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || die "$PYTHON is missing or older than 3.11"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || die "$PYTHON cannot make venvs: apt-get install python3-venv"
base=$("$PYTHON" -c 'import sys; print(sys.base_prefix)')
case $base/ in
  /root/*|/home/*) die "$PYTHON lives in $base: the unit's ProtectHome=yes hides it from the service; use /usr/bin/python3" ;;
esac

# --- user and group ------------------------------------------------------------------------
if ! getent group "$NAME" >/dev/null; then groupadd --system "$NAME" && echo "created group $NAME"; fi
if ! getent passwd "$NAME" >/dev/null; then
  useradd --system --gid "$NAME" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$NAME"
  echo "created user $NAME (no login shell, no home)"
fi

# --- the venv: created once, then upgraded in place ------------------------------------------
# In place, not built beside and swapped: a venv's scripts name its absolute path, so it cannot move.
# pip replaces the package by its RECORD, so files a new version dropped disappear too.
# A venv whose interpreter is gone, another one or another minor version (a release upgrade) is rebuilt.
started=$(date +%s)
which='import sys; print(sys.base_prefix, "%d.%d" % sys.version_info[:2])'  # the interpreter a venv is made of
want=$("$PYTHON" -c "$which")
have=$("$PREFIX/bin/python" -c "$which" 2>/dev/null || true)
if [ -f "$PREFIX/pyvenv.cfg" ] && [ "$have" = "$want" ]; then
  echo "upgrading the venv in $PREFIX"
elif [ -f "$PREFIX/pyvenv.cfg" ]; then
  echo "rebuilding the venv in $PREFIX (python ${have:-missing} -> $want)"
  "$PYTHON" -m venv --clear "$PREFIX"
elif [ -e "$PREFIX" ] && [ -n "$(ls -A "$PREFIX")" ]; then
  die "$PREFIX exists and is not a venv; move it away first"
else
  echo "creating the venv in $PREFIX"
  "$PYTHON" -m venv "$PREFIX"
fi
# Build from a copy: pip builds in the tree it is given, and root must not leave build/ and
# *.egg-info owned by root in someone's clone.
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
(cd "$SRC" && tar -c --exclude=__pycache__ --exclude='*.pyc' pyproject.toml README.md auth proxy) | tar -x -C "$build"
"$PREFIX/bin/pip" install --quiet --progress-bar off --upgrade "$build"
mkdir -p "$PREFIX/share/doc"
install -m 0644 "$SRC/README.md" "$SRC/SECURITY.md" "$PREFIX/share/doc/"
version=$("$PREFIX/bin/$NAME" --version)
# The service runs it as $NAME: an interpreter or a folder above $PREFIX it cannot enter stops it at start.
runuser -u "$NAME" -- "$PREFIX/bin/$NAME" --version >/dev/null \
  || die "user $NAME cannot run $PREFIX/bin/$NAME: make $PREFIX, the folders above it and $PYTHON readable by others"
echo "installed $version in $PREFIX ($(($(date +%s) - started)) s)"

mkdir -p "$BIN_DIR"
ln -sfn "$PREFIX/bin/$NAME" "$LINK"
echo "command: $LINK -> $PREFIX/bin/$NAME"

# --- configuration: created when absent, never overwritten --------------------------------------
kept() { echo "kept $1 (exists; not touched)"; }
absent() { if [ -e "$1" ] || [ -L "$1" ]; then kept "$1"; return 1; fi; }
place() {  # place TMP PATH: 0640 root:$NAME, then renamed into place without clobbering (mv -n)
  chown root:"$NAME" "$1" && chmod 0640 "$1" && mv -n "$1" "$2" && echo "created $2"
}
if absent "$ETC"; then install -d -m 0750 -o root -g "$NAME" "$ETC" && echo "created $ETC"; fi
if absent "$ETC/proxy.yml"; then
  # The repository's proxy.yml, comments and all, with the host's values. Edited line by line (a YAML
  # dump would drop the comments), then read back: if the file changed shape, fail rather than guess.
  "$PREFIX/bin/python" - "$SRC/proxy.yml" "$ETC/proxy.yml.tmp" "$STATE/maintenance" "$RUN_DIR/$NAME.pid" <<'PY'
import re, sys, yaml
src, dst, maintenance, pid = sys.argv[1:]
want = {"listen": "0.0.0.0:5043", "maintenance_file": maintenance, "pid_file": pid}
NOTES = {"listen": "   # every interface (the comment above is about the repository's copy)",
         "cert": "   # full chain, in this folder, mode 0640 root:registry-auth-proxy",
         "key": "    # in this folder, mode 0640 root:registry-auth-proxy"}
lines, block, seen = open(src, encoding="utf-8").read().splitlines(), "", set()
out = ["# Installed by deploy/install.sh from the repository's proxy.yml; it set listen, tls,",
       "# auth.token.secret_file, maintenance_file and pid_file for this host. Relative paths: this folder.", ""]
for line in lines:
    if re.match(r"[A-Za-z_]", line):
        block = line.split(":", 1)[0]
    key = re.match(r"([a-z_]+):", line)
    if key and key.group(1) in want:
        line = f"{key.group(1)}: {want[key.group(1)]}" + NOTES.get(key.group(1), "")
        seen.add(key.group(1))
    elif block == "tls" and re.match(r"\s+(cert|key):", line):
        indent, name = re.match(r"(\s+)(cert|key):", line).groups()
        line = f"{indent}{name}: server.{'crt' if name == 'cert' else 'key'}" + NOTES[name]
    elif block == "auth" and re.match(r"\s+#?\s*secret_file:", line):
        line = re.match(r"(\s+)", line).group(1) + "secret_file: token.key"
    out.append(line)
out += [f"{k}: {v}" for k, v in want.items() if k not in seen]
text = "\n".join(out) + "\n"
data = yaml.safe_load(text)
token = (data.get("auth") or {}).get("token") or {}
got = {k: data.get(k) for k in want}, data.get("tls"), token.get("secret_file")
if got != (want, {"cert": "server.crt", "key": "server.key"}, "token.key"):
    sys.exit(f"install.sh: {src} changed shape; could not adapt it (got {got})")
open(dst, "w", encoding="utf-8").write(text)
PY
  place "$ETC/proxy.yml.tmp" "$ETC/proxy.yml"
fi
for file in users.htpasswd users.groups; do
  if absent "$ETC/$file"; then : >"$ETC/$file.tmp" && place "$ETC/$file.tmp" "$ETC/$file"; fi
done
if absent "$ETC/token.key"; then
  # 48 random bytes as base64: what auth.keys.KEY_COMMAND names. Written 0600 first, then opened to the group.
  (umask 077 && head -c 48 /dev/urandom | base64 >"$ETC/token.key.tmp")
  place "$ETC/token.key.tmp" "$ETC/token.key"
fi
if absent "$STATE"; then install -d -m 0750 -o root -g "$NAME" "$STATE" && echo "created $STATE"; fi

# --- systemd unit: the repository's, with this install's paths -------------------------------------
mkdir -p "$UNIT_DIR"
sed -e "s|/opt/$NAME|$PREFIX|g" -e "s|/etc/$NAME|$ETC|g" -e "s|/var/lib/$NAME|$STATE|g" \
  "$SRC/deploy/$NAME.service" >"$UNIT.tmp"
chmod 0644 "$UNIT.tmp" && mv "$UNIT.tmp" "$UNIT"
echo "unit: $UNIT"
if [ "$SYSTEMD" = yes ]; then
  systemctl daemon-reload
  systemctl enable "$NAME"
fi

# --- start only what can serve: TLS configured and the whole config loading ------------------------
ready=$("$PREFIX/bin/python" - "$ETC/proxy.yml" <<'PY' || true
import sys
from proxy.config import load_config
from proxy.config.reader import ConfigError
try:
    config = load_config(sys.argv[1])
except ConfigError as exc:
    print(exc)
else:
    print("yes" if config.tls is not None else "tls is off in this config (plain HTTP)")
PY
)
if [ "$ready" = yes ] && ! "$LINK" check-config --config "$ETC/proxy.yml"; then
  ready="check-config reports an error (above)"
fi
if [ "$ready" = yes ]; then
  if [ "$SYSTEMD" = yes ]; then
    systemctl restart "$NAME"  # starts it, or restarts an upgraded one onto the new code
    echo "started: systemctl status $NAME"
  else
    echo "systemd is not running (or --no-systemd): start it with"
    echo "  systemctl daemon-reload && systemctl enable --now $NAME"
  fi
  exit 0
fi
# The command finds /etc/registry-auth-proxy/proxy.yml by itself (unless ./proxy.yml exists, as in a clone);
# any other --etc has to be named.
cfg="" where="
     (the command reads $ETC/proxy.yml unless --config, \$REGISTRY_AUTH_PROXY_CONFIG or ./proxy.yml say otherwise)"
[ "$ETC" = "/etc/$NAME" ] || { cfg=" --config $ETC/proxy.yml"; where=""; }
reload_cmds=""
[ "$SYSTEMD" = yes ] || reload_cmds="
  0. systemctl daemon-reload && systemctl enable $NAME   (not done here: systemd not running, or --no-systemd)"
if [ "$SYSTEMD" = yes ] && systemctl is-active --quiet "$NAME"; then
  echo "warning: $NAME is running the code it started with; restart it once the config loads" >&2
fi
cat <<MSG

$version is installed; the service is NOT started: ${ready:-the config does not load}.
Next steps:$reload_cmds
  1. put the certificate (full chain) and key in $ETC, readable by the service:
       install -m 0640 -o root -g $NAME fullchain.pem $ETC/server.crt
       install -m 0640 -o root -g $NAME privkey.pem   $ETC/server.key
  2. edit $ETC/proxy.yml (backend, public_url, access) and add users:
       registry-auth-proxy user add alice$cfg && registry-auth-proxy group add pusher alice$cfg
  3. registry-auth-proxy check-config$cfg$where
  4. systemctl start $NAME
Reload after changing the certificate or proxy.yml: systemctl reload $NAME (or: registry-auth-proxy reload)
MSG
