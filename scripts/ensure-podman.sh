#!/usr/bin/env bash
# Make a Docker-compatible engine available for the container runtime and `package` (Podman here:
# no Docker daemon runs on these machines, and public registries cannot be reached).
#  - installs podman, runc and debootstrap from Debian if missing
#  - configures runc and no default ulimits (what works in this sandbox)
#  - starts `podman system service` on $MLOPS_GITOPS_PODMAN_SOCKET (default /tmp/podman.sock)
#  - builds the base image mlops-gitops-base:bookworm once (debootstrap minbase with python3,
#    python3-venv and ca-certificates), caching the root filesystem tarball in ~/.cache/mlops-gitops
# Prints the DOCKER_HOST value to use. Idempotent.
set -euo pipefail

socket=${MLOPS_GITOPS_PODMAN_SOCKET:-/tmp/podman.sock}
image=mlops-gitops-base:bookworm
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mlops-gitops
export DEBIAN_FRONTEND=noninteractive

# One at a time: parallel test workers call this together
exec 9>"${TMPDIR:-/tmp}/mlops-gitops-ensure-podman.lock"
flock 9

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq podman runc debootstrap >/dev/null
fi

conf=/etc/containers/containers.conf
if [ ! -f "$conf" ] || ! grep -q 'runtime = "runc"' "$conf"; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > "$conf"
fi

answers() { curl -sf --max-time 5 --unix-socket "$socket" http://podman/version >/dev/null 2>&1; }
if ! answers; then
  rm -f "$socket"
  # 9>&-: the service must not inherit the lock, or every later call waits for it forever
  nohup podman system service --time=0 "unix://$socket" >/tmp/podman-service.log 2>&1 9>&- &
  for _ in $(seq 1 50); do answers && break; sleep 0.2; done
  answers || { echo "ensure-podman: the Podman API did not come up on $socket" >&2; exit 1; }
fi

if ! podman image exists "$image"; then
  mkdir -p "$cache"
  tarball=$cache/base-bookworm.tar
  if [ ! -f "$tarball" ]; then
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" >/dev/null
    tar -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  podman import -q "$tarball" "$image" >/dev/null
fi

echo "DOCKER_HOST=unix://$socket"
