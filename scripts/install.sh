#!/usr/bin/env bash
# Install vidshard-node as a systemd service on this (Debian) machine.
#
#   sudo scripts/install.sh [--no-build]
#
# Builds the release binaries when cargo is available (a no-op when they
# are up to date; --no-build uses target/release as it is), installs
# vidshard-node and vidshard to /usr/local/bin, creates the `vidshard`
# system user, installs the unit to /etc/systemd/system (replacing an older
# copy) and scripts/node.example.toml to /etc/vidshard/node.toml only when
# that file does not exist yet (an existing config is never overwritten),
# installs ffmpeg with apt when it is missing, and reloads systemd when it
# is running. It does not enable or start the service: it prints how.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$VIDSHARD_ROOT"

usage() {
    cat >&2 <<'USAGE'
usage: sudo scripts/install.sh [--no-build]

  --no-build  do not run cargo; install the binaries already in target/release
USAGE
    exit 2
}

build=1
for arg in "$@"; do
    case "$arg" in
    --no-build) build=0 ;;
    -h | --help) usage ;;
    *) log "install.sh: unknown argument $arg"; usage ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "run as root: sudo scripts/install.sh"

BIN_DIR=/usr/local/bin
CONF_DIR=/etc/vidshard
CONF="$CONF_DIR/node.toml"
UNIT_DIR=/etc/systemd/system
UNIT=vidshard-node.service
STATE_DIR=/var/lib/vidshard
SERVICE_USER=vidshard
release="${CARGO_TARGET_DIR:-$VIDSHARD_ROOT/target}/release"

section "ffmpeg"
ensure_ffmpeg
log "$(command -v ffmpeg): $(ffmpeg -hide_banner -version | head -n1)"

section "release build"
if [ "$build" -eq 1 ] && command -v cargo >/dev/null 2>&1; then
    cargo build --release --workspace
elif [ "$build" -eq 1 ]; then
    # Typical under sudo: cargo lives in the invoking user's ~/.cargo/bin.
    log "cargo not found in root's PATH: using the binaries in $release as they are"
fi
for bin in vidshard-node vidshard; do
    [ -x "$release/$bin" ] \
        || die "$release/$bin is missing: run \`cargo build --release --workspace\` first, then rerun"
done

section "binaries -> $BIN_DIR"
for bin in vidshard-node vidshard; do
    install -D -m 0755 "$release/$bin" "$BIN_DIR/$bin"
    log "installed $BIN_DIR/$bin"
done

section "user $SERVICE_USER"
if getent passwd "$SERVICE_USER" >/dev/null; then
    log "user $SERVICE_USER exists"
else
    nologin="$(command -v nologin || echo /usr/sbin/nologin)"
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
        --shell "$nologin" --comment "vidshard-node daemon" "$SERVICE_USER"
    log "created system user $SERVICE_USER"
fi
# systemd's StateDirectory= creates it too; made here as well so the node
# can also be started by hand (and on machines without systemd).
install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"

section "config $CONF"
install -d -m 0755 "$CONF_DIR"
if [ -e "$CONF" ]; then
    log "kept the existing $CONF (never overwritten; compare with scripts/node.example.toml)"
else
    install -m 0644 scripts/node.example.toml "$CONF"
    log "installed $CONF from scripts/node.example.toml (the built-in defaults: edit host, role, master)"
fi

section "unit $UNIT_DIR/$UNIT"
install -D -m 0644 "scripts/systemd/$UNIT" "$UNIT_DIR/$UNIT"
log "installed $UNIT_DIR/$UNIT"

section "systemd"
next="systemctl enable --now ${UNIT%.service}"
# The test sd_booted() does: this directory exists only when systemd is PID 1.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    log "ran systemctl daemon-reload"
    if systemctl is-active --quiet "$UNIT"; then
        log "the service is running: restart it to use the new binary: systemctl restart ${UNIT%.service}"
    else
        log "start it now and at every boot: $next"
    fi
    log "logs: journalctl -u ${UNIT%.service} -f"
else
    log "systemd is not running on this machine (no /run/systemd/system), so nothing was reloaded."
    log "On a machine booted with systemd, run:"
    log "    systemctl daemon-reload && $next"
    log "Without systemd, start the node by hand as the service would:"
    log "    runuser -u $SERVICE_USER -- $BIN_DIR/vidshard-node --config $CONF --data-dir $STATE_DIR"
fi
log "the first node of a cluster makes its join token; on it, print the token for the others"
log "(join_token in their $CONF) and the operator token (VIDSHARD_TOKEN for vidshard):"
log "    runuser -u $SERVICE_USER -- $BIN_DIR/vidshard-node token [--operator] --data-dir $STATE_DIR"
