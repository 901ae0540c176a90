#!/usr/bin/env bash
# Chaos soak: 5 nodes on this machine, a stream of jobs from CLI clients
# pointed at random nodes, and a fault every 3-8 s (kill -9 of the leader
# or another node, SIGSTOP/SIGCONT, clean restart; as root also a network
# partition of one or two nodes, a slow lossy link, a full disk: each node
# in its own network namespace with a tmpfs data dir), then a check that
# nothing was lost, corrupted or left behind (see scripts/chaos.py).
#
#   scripts/chaos.sh [SECONDS=1800] [SEED=random]
#
# NODE_BIN / CLIENT_BIN pick other binaries (default: a debug build made
# here). KEEP_WORK=DIR keeps logs and outputs in DIR. CHAOS_ARGS adds
# chaos.py options (e.g. --no-netns). Exit 1 on any
# violation, printing the seed and the fault history to replay it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

seconds="${1:-1800}"
seed="${2:-}"
ensure_ffmpeg
command -v python3 >/dev/null 2>&1 || apt_install python3
if [ -z "${NODE_BIN:-}" ] || [ -z "${CLIENT_BIN:-}" ]; then
    section "cargo build --workspace"
    cargo build --workspace
fi
node_bin="${NODE_BIN:-target/debug/vidshard-node}"
client_bin="${CLIENT_BIN:-target/debug/vidshard}"
args=(--node-bin "$node_bin" --client-bin "$client_bin" --seconds "$seconds")
[ -n "$seed" ] && args+=(--seed "$seed")
[ -n "${KEEP_WORK:-}" ] && args+=(--work "$KEEP_WORK")
# shellcheck disable=SC2206
[ -n "${CHAOS_ARGS:-}" ] && args+=(${CHAOS_ARGS})
section "chaos soak: $seconds s"
exec python3 scripts/chaos.py "${args[@]}"
