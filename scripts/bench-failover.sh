#!/usr/bin/env bash
# Failover numbers: kill -9 the leader of a local 3-node cluster mid-job
# TRIALS times (default 10) and print the median and maximum time to a new
# master and to the job making progress again; then the cost of a Raft
# job-state write (commands per second on one node).
#
#   scripts/bench-failover.sh            TRIALS=20 scripts/bench-failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_ffmpeg
cargo build --workspace --quiet
TRIALS="${TRIALS:-10}" cargo test -p vidshard-node --test failover_trials -- --ignored --nocapture 2>&1 \
    | grep -E '^(trial|kill)'
cargo bench -p vidshard-node --bench raft_writes --quiet
