#!/usr/bin/env bash
# Start a local registry (Debian's docker-registry, unless something already listens
# on :5000) and registry-auth-proxy in front of it on https://localhost:5043, with the
# example certificate and a demo user mark/pusherpwd in group pusher.
# It serves ./proxy.yml, which listens on 127.0.0.1 only (a known password must not be
# reachable from the network); edit its `listen:` to expose it.
# Run as root on Debian 12 from the repository root:  bash deploy/demo.sh
# Stop with:  bash deploy/demo.sh stop   (also removes the CA entries it installed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.demo
mkdir -p "$STATE"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop() {
  for name in proxy registry; do
    if [ -f "$STATE/$name.pid" ]; then kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true; rm -f "$STATE/$name.pid"; fi
  done
  if [ -f "$STATE/ca-installed" ]; then
    while read -r file; do rm -f "$file"; rmdir "$(dirname "$file")" 2>/dev/null || true; done <"$STATE/ca-installed"
    rm -f "$STATE/ca-installed"
    echo "removed the demo CA from /etc/docker/certs.d and /etc/containers/certs.d"
  fi
  echo "demo stopped"
}
if [ "${1:-}" = stop ]; then stop; exit 0; fi

need=()
for pkg in docker-registry python3-venv python3-pip apache2-utils curl ca-certificates; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Where systemd runs, installing docker-registry also starts Debian's own registry service on
# :5000, whose stock config enables htpasswd auth: check-config below then stops with the fix
# (remove its `auth:` section; see the README's "Configuring the registry behind the proxy").

if [ ! -x .venv/bin/registry-auth-proxy ]; then
  echo "creating .venv and installing registry-auth-proxy into it (about a minute)..."
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install --progress-bar off -e . | grep -E '^(Collecting|Successfully)' || true
  .venv/bin/registry-auth-proxy --version
fi

if listening 5000; then
  echo "a registry already listens on 127.0.0.1:5000; using it"
else
  cat > "$STATE/registry.yml" <<YML
version: 0.1
log: {level: info}
storage:
  filesystem: {rootdirectory: $STATE/registry-data}
  delete: {enabled: true}
http: {addr: 127.0.0.1:5000}
YML
  # a clean environment: docker-registry reads every REGISTRY_* variable as its own config
  # (podman users often have REGISTRY_AUTH_FILE set), so none may leak in from the caller
  nohup env -i PATH="$PATH" docker-registry serve "$STATE/registry.yml" >>"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  for _ in $(seq 50); do listening 5000 && break; sleep 0.2; done
  listening 5000 || { echo "docker-registry did not start; see $STATE/registry.log" >&2; exit 1; }
  echo "started docker-registry on 127.0.0.1:5000 (data in $STATE/registry-data)"
fi

if [ ! -s users.htpasswd ]; then
  echo pusherpwd | .venv/bin/registry-auth-proxy user add mark --password-stdin --config proxy.yml
  .venv/bin/registry-auth-proxy group add pusher mark --config proxy.yml
fi

for dir in /etc/docker/certs.d/localhost:5043 /etc/containers/certs.d/localhost:5043; do
  if [ ! -e "$dir/ca.crt" ]; then  # never overwrite (or later remove) a CA the machine already had
    mkdir -p "$dir" && cp certs-example/ca.crt "$dir/ca.crt" && echo "$dir/ca.crt" >>"$STATE/ca-installed"
  fi
done

if [ -f "$STATE/proxy.pid" ] && kill -0 "$(cat "$STATE/proxy.pid")" 2>/dev/null; then
  kill "$(cat "$STATE/proxy.pid")"; sleep 1
fi
.venv/bin/registry-auth-proxy check-config --config proxy.yml
echo "--- $(date -u '+%Y-%m-%dT%H:%M:%SZ') demo start" >>"$STATE/proxy.log"
nohup .venv/bin/registry-auth-proxy serve --config proxy.yml >>"$STATE/proxy.log" 2>&1 &
echo $! >"$STATE/proxy.pid"
for _ in $(seq 50); do listening 5043 && break; sleep 0.2; done
listening 5043 || { echo "the proxy did not start; see $STATE/proxy.log" >&2; tail -5 "$STATE/proxy.log" >&2; exit 1; }
cat <<MSG

registry-auth-proxy is up: https://localhost:5043  ->  http://127.0.0.1:5000
  demo user: mark / pusherpwd (group pusher)      logs: $STATE/proxy.log
  the command:  export PATH=$ROOT/.venv/bin:\$PATH   (then: registry-auth-proxy --help)
  try:   curl --cacert certs-example/ca.crt https://localhost:5043/v2/_catalog
         docker login localhost:5043 -u mark      (password: pusherpwd)
  stop:  bash deploy/demo.sh stop
MSG
