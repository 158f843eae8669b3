#!/usr/bin/env bash
# Install and start the real test stack nexusify's tests drive (idempotent; safe to re-run).
#   - Debian packages: podman + runc (Docker-compatible API), nginx-light, docker-registry,
#     mmdebstrap, busybox-static, openssh-server/-client (remote hosts over SSH in tests)
#   - the project itself with its dev extras
#   - Podman's settings for this machine (explicit ulimits, runc) and its API socket
#   - a local base image localhost/python:3.11-slim-bookworm built with mmdebstrap (cached
#     outside the repo), since no image can be pulled here, and localhost/nginx:stack (nginx-light)
#   - PostgreSQL (already installed on these machines) started if it is down
# Prints the environment the tests need as `export` lines into $NEXUSIFY_STACK_ENV
# (default: ~/.cache/nexusify-stack/env.sh). Servers that tests own (pypiserver, registry,
# nginx, moto) are started by pytest fixtures on free loopback ports.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${NEXUSIFY_STACK_CACHE:-$HOME/.cache/nexusify-stack}
run_dir=${NEXUSIFY_STACK_RUN:-/run/nexusify-stack}
sock="$run_dir/podman.sock"
base_image=localhost/python:3.11-slim-bookworm
mkdir -p "$cache" "$run_dir"
log() { printf '[stack] %s\n' "$*" >&2; }

need_apt=()
for pair in podman:podman runc:runc nginx:nginx-light docker-registry:docker-registry \
            mmdebstrap:mmdebstrap busybox:busybox-static sshd:openssh-server ssh:openssh-client \
            unshare:util-linux setsid:util-linux; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The project and its dev extras go into a virtualenv of this checkout (.venv), so two
# checkouts on one machine (a developer's and CI's) never replace each other's install.
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.nexusify-installed"
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
  log "installing nexusify with its dev extras into $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here[dev]" >&2
  touch "$stamp"
fi
"$venv/bin/python" -c "import nexusify" || { log "nexusify did not install"; exit 1; }

mkdir -p /etc/containers/registries.conf.d
conf=/etc/containers/containers.conf
want='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"'
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" > "$conf"
fi
# Registries on loopback are plain HTTP: tests start them on ports in this range.
reg=/etc/containers/registries.conf.d/50-nexusify-loopback.conf
if [ ! -f "$reg" ]; then
  {
    for port in $(seq 25000 25019); do
      printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n\n' "$port"
    done
  } > "$reg"
  restart_service=1
fi

# PostgreSQL is preinstalled here; start it if it is not answering.
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

# Podman's Docker-compatible API.
if [ "${restart_service:-0}" = 1 ] && [ -f "$run_dir/podman.pid" ]; then
  kill "$(cat "$run_dir/podman.pid")" 2>/dev/null || true
  rm -f "$sock"
fi
if ! curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
  log "starting the Podman API service at $sock"
  rm -f "$sock"
  nohup podman system service --time=0 "unix://$sock" >"$run_dir/podman.log" 2>&1 &
  echo $! > "$run_dir/podman.pid"
  for _ in $(seq 1 50); do
    curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -sf --unix-socket "$sock" http://d/_ping >/dev/null || { log "Podman API did not start; see $run_dir/podman.log"; exit 1; }
fi

# Base image with Python: no registry can be pulled from here, so build one.
if ! podman image exists "$base_image"; then
  tar="$cache/python-3.11-bookworm.tar"
  if [ ! -s "$tar" ]; then
    log "building the base image with mmdebstrap (about 30 s)"
    mmdebstrap --quiet --variant=minbase --include=python3-minimal,python3-pip,python3-venv,ca-certificates \
      bookworm "$cache/partial-base.tar" >/dev/null
    mv "$cache/partial-base.tar" "$tar"
  fi
  podman import --quiet --change 'CMD ["/bin/bash"]' "$tar" "$base_image" >/dev/null
fi
# Dockerfiles say `FROM python:3.11-slim-bookworm`: make the short name resolve locally.
podman image exists docker.io/library/python:3.11-slim-bookworm || podman tag "$base_image" docker.io/library/python:3.11-slim-bookworm
# A tiny busybox image for proxy/health tests.
if ! podman image exists localhost/busybox:stack; then
  bdir=$(mktemp -d)
  mkdir -p "$bdir/bin"; cp "$(command -v busybox)" "$bdir/bin/busybox"
  for a in sh httpd wget cat sleep echo; do ln -sf busybox "$bdir/bin/$a"; done
  tar -C "$bdir" -cf "$cache/busybox.tar" .
  podman import --quiet "$cache/busybox.tar" localhost/busybox:stack >/dev/null
  rm -rf "$bdir"
fi

# The proxy image of `proxy.kind = "container"` in tests: nginx-light on a minbase Debian (the
# official nginx image cannot be pulled here).
nginx_image=localhost/nginx:stack
if ! podman image exists "$nginx_image"; then
  tar="$cache/nginx-bookworm.tar"
  if [ ! -s "$tar" ]; then
    log "building the nginx proxy image with mmdebstrap (about 30 s)"
    mmdebstrap --quiet --variant=minbase --include=nginx-light bookworm "$cache/partial-nginx.tar" >/dev/null
    mv "$cache/partial-nginx.tar" "$tar"
  fi
  podman import --quiet --change 'CMD ["nginx", "-g", "daemon off;"]' "$tar" "$nginx_image" >/dev/null
fi
# sshd needs its privilege-separation directory; tests run their own sshd on loopback.
mkdir -p /run/sshd

envfile=${NEXUSIFY_STACK_ENV:-$cache/env.sh}
cat > "$envfile" <<ENV
export DOCKER_HOST=unix://$sock
export NEXUSIFY_TEST_BASE_IMAGE=$base_image
export NEXUSIFY_TEST_BUSYBOX_IMAGE=localhost/busybox:stack
export NEXUSIFY_TEST_NGINX_IMAGE=$nginx_image
export NEXUSIFY_TEST_REGISTRY_PORTS=25000-25019
ENV
log "stack ready; environment in $envfile"
echo "$envfile"
