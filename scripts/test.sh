#!/usr/bin/env bash
# Everything CI checks, in order: formatting, clippy, build, unit and
# integration tests, the original-protocol end-to-end tests, network
# partitions, the systemd unit, and a 3-minute chaos soak.
#
#   scripts/test.sh
#
# Installs what the tests need when it is missing: ffmpeg, tmux and a
# headless Chromium for the browser playback test (apt-get),
# the rustfmt and clippy components (rustup), and a python venv with
# grpcio + grpcio-tools for tests/legacy (${VIDSHARD_VENV:-~/.cache/vidshard/venv}).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$VIDSHARD_ROOT"

if [ "$#" -gt 0 ]; then
    log "usage: scripts/test.sh   (no arguments)"
    exit 2
fi

started=$SECONDS
step() {
    section "[$((SECONDS - started))s] $*"
}

step "setup: ffmpeg, tmux, chromium"
ensure_ffmpeg
ensure_tmux
ensure_chromium
log "$(ffmpeg -hide_banner -version | head -n1)"
log "$( (chromium-headless-shell --version || chromium --version) 2>/dev/null | head -n1)"

step "setup: rustfmt and clippy"
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust first (https://rustup.rs)"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || die "rustfmt/clippy missing and rustup not found to add them"
    rustup component add rustfmt clippy
fi
log "$(cargo --version); $(cargo fmt --version); $(cargo clippy --version)"

step "setup: python grpc venv for the legacy-protocol test"
py="$(ensure_python_grpc)"
log "$py ($("$py" -c 'import grpc; print("grpcio", grpc.__version__)'))"

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build --workspace"
cargo build --workspace

step "cargo test --workspace"
cargo test --workspace

step "tests/legacy/test_legacy.sh target/debug/vidshard-node"
tests/legacy/test_legacy.sh target/debug/vidshard-node
tests/legacy/test_original_peers.sh target/debug/vidshard-node target/debug/vidshard

step "tests/partition/test_partition.sh (network namespaces)"
tests/partition/test_partition.sh target/debug/vidshard-node target/debug/vidshard

step "tests/systemd/test_unit.sh (systemd-analyze verify)"
tests/systemd/test_unit.sh target/debug/vidshard-node

# The 3-minute chaos soak (the 30-minute one is `scripts/chaos.sh`): a
# fixed seed, so a failure here replays with the same faults.
step "scripts/chaos.sh 180 7 (chaos soak)"
NODE_BIN=target/debug/vidshard-node CLIENT_BIN=target/debug/vidshard scripts/chaos.sh 180 7

section "[$((SECONDS - started))s] all checks passed"
