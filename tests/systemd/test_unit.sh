#!/usr/bin/env bash
# The systemd unit passes `systemd-analyze verify` (with ExecStart pointed
# at the binary under test, since verify checks that it is executable),
# and a unit with a typo is caught, so the check itself can fail.
#
#   tests/systemd/test_unit.sh target/debug/vidshard-node
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "installing systemd (for systemd-analyze)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unit="$work/vidshard-node.service"
sed "s|/usr/local/bin/vidshard-node|$binary|" "$root/scripts/systemd/vidshard-node.service" >"$unit"
grep -q "ExecStart=$binary " "$unit" || { echo "FAIL: ExecStart not found in the unit"; exit 1; }
if ! out="$(systemd-analyze verify "$unit" 2>&1)" || [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify complained:"
    echo "$out"
    exit 1
fi
echo "ok: systemd-analyze verify passes on scripts/systemd/vidshard-node.service"
sed 's/^ProtectSystem=/ProtectSytem=/' "$unit" >"$work/typo.service"
if out="$(systemd-analyze verify "$work/typo.service" 2>&1)" && [ -z "$out" ]; then
    echo "FAIL: a misspelt directive went unnoticed"
    exit 1
fi
echo "ok: a misspelt directive is reported"
