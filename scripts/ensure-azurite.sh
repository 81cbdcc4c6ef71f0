#!/usr/bin/env bash
# Make sure Azurite (Microsoft's Azure Storage emulator) serves Blob storage on 127.0.0.1:10000 for the
# object-store tests. Installs Node from Debian and Azurite from the npm registry when they are missing.
set -euo pipefail

PORT="${AZURITE_BLOB_PORT:-10000}"
DATA="${AZURITE_DATA:-${TMPDIR:-/tmp}/mlops-gitops-azurite}"

ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

ready && exit 0
if ! command -v azurite-blob >/dev/null; then
  if ! command -v npm >/dev/null; then
    echo "ensure-azurite: installing Node.js from Debian packages" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  echo "ensure-azurite: installing azurite from the npm registry" >&2
  npm install -g --silent azurite >/dev/null
fi
mkdir -p "$DATA"
# Detached from this script (setsid, no inherited descriptors) so callers waiting on its output return.
# --skipApiVersionCheck: the Python SDK may speak a newer API version than this Azurite release knows.
setsid azurite-blob --blobHost 127.0.0.1 --blobPort "$PORT" --location "$DATA" --silent --skipApiVersionCheck \
  --loose </dev/null >"$DATA/azurite.log" 2>&1 &
for _ in $(seq 1 60); do
  ready && exit 0
  sleep 0.5
done
echo "ensure-azurite: Azurite did not come up on 127.0.0.1:$PORT (log: $DATA/azurite.log)" >&2
exit 1
