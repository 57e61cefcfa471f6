#!/usr/bin/env bash
# Build the container base image (Debian + python3) from Debian packages alone.
#
# Why: deploy/Dockerfile must build on machines that reach Debian's mirror and PyPI
# but no container registry, so `FROM python:3.11-slim` cannot be pulled there.
# debootstrap makes the same thing (a minimal bookworm with python3 3.11, venv,
# CA certificates) from .deb files, and `docker import` turns it into an image.
#
#   deploy/build-base.sh                       # -> registry-auth-proxy-base:bookworm
#   docker build --network host -f deploy/Dockerfile -t registry-auth-proxy:0.1.0 .
#
# Options:
#   --tag TAG        image to create (default registry-auth-proxy-base:bookworm)
#   --mirror URL     Debian mirror (default: the one in this machine's apt sources)
#   --security URL   security mirror (default: from apt sources, else deb.debian.org)
#   --cache FILE     keep the root file system as FILE (tar); when FILE exists it is
#                    imported instead of running debootstrap again (seconds, not minutes)
#   --force          rebuild even if TAG exists or FILE is cached (to pick up updates)
# Environment: DOCKER (the docker CLI to run, default docker), DOCKER_HOST as usual.
# Needs root (debootstrap) and the debootstrap package.
set -euo pipefail

TAG=registry-auth-proxy-base:bookworm
SUITE=bookworm
MIRROR=""
SECURITY=""
CACHE=""
FORCE=0
DOCKER=${DOCKER:-docker}
PACKAGES=python3,python3-venv,ca-certificates

while (($#)); do
    case "$1" in
        --tag) TAG=$2; shift 2 ;;
        --mirror) MIRROR=$2; shift 2 ;;
        --security) SECURITY=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "build-base.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { echo "build-base.sh: $*" >&2; }

# First apt source URI whose suites include exactly SUITE_WANTED (deb822 .sources or
# one-line sources.list), so CI uses the mirror its machine is already configured with.
apt_uri() {
    local want=$1 file
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] || continue
        awk -v want="$want" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uri = ""; ok = 0; deb = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Types:/ && $i ~ /(^|[ \t])deb([ \t]|$)/) deb = 1
                    if ($i ~ /^URIs:/) { split($i, u, /[ \t]+/); uri = u[2] }
                    if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == want) ok = 1 }
                }
                if (deb && ok && uri != "") { print uri; exit }
            }' "$file"
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$file" ] || continue
        awk -v want="$want" '$1 == "deb" { u = ($2 ~ /^\[/) ? 3 : 2; if ($(u + 1) == want) { print $u; exit } }' "$file"
    done
}

if [ "$FORCE" = 0 ] && "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG already exists (--force rebuilds it)"
    exit 0
fi

import_tar() {
    # PATH and a shell as the default command: `docker import` starts from an empty config.
    "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase --include=$PACKAGES $SUITE" \
        "$1" "$TAG" >/dev/null
    log "imported $TAG ($("$DOCKER" image inspect --format '{{.Size}}' "$TAG") bytes)"
}

if [ "$FORCE" = 0 ] && [ -n "$CACHE" ] && [ -s "$CACHE" ]; then
    log "importing the cached root file system $CACHE"
    import_tar "$CACHE"
    exit 0
fi

command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
[ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }

MIRROR=${MIRROR:-$(apt_uri "$SUITE" | head -n1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY:-$(apt_uri "$SUITE-security" | head -n1)}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}

ROOT=$(mktemp -d /var/tmp/rap-base.XXXXXX)
chmod 0755 "$ROOT"   # it becomes the image's /: mktemp's 0700 would lock out every non-root user
cleanup() {
    umount "$ROOT/proc" 2>/dev/null || true
    rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT

log "debootstrap $SUITE from $MIRROR (a few minutes the first time)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >&2

# Security fixes: debootstrap installs the release as it was; the image should not.
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
mount -t proc proc "$ROOT/proc"
log "applying $SUITE-updates and $SUITE-security from $SECURITY"
chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get -q -o APT::Sandbox::User=root update >&2
chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o APT::Sandbox::User=root upgrade >&2
chroot "$ROOT" apt-get clean
umount "$ROOT/proc"

# Nothing of this machine in the image: docker provides resolv.conf/hostname/hosts at
# run time. Manual pages, translations and apt's lists are dead weight; the packages'
# copyright files stay (they are the licences the image is distributed under).
rm -f "$ROOT/etc/resolv.conf" "$ROOT/etc/hostname"
: >"$ROOT/etc/hosts"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/debconf/*-old \
       "$ROOT"/var/log/* "$ROOT"/tmp/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
       "$ROOT"/usr/share/locale/*
find "$ROOT/usr/share/doc" -type f ! -name copyright -delete
find "$ROOT/usr/share/doc" -type d -empty -delete

if [ -n "$CACHE" ]; then
    mkdir -p "$(dirname "$CACHE")"
    tar --numeric-owner -C "$ROOT" -cf "$CACHE.tmp" .
    mv "$CACHE.tmp" "$CACHE"
    log "cached the root file system as $CACHE"
    import_tar "$CACHE"
else
    tar --numeric-owner -C "$ROOT" -c . | import_tar -
fi
