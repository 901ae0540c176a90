#!/usr/bin/env bash
# Fetch the browser players the node's HTTP server bundles (hls.js and
# dash.js) from npm at pinned versions, check each tarball against the
# registry's sha512 integrity, and write into node/assets/players/:
#
#   hls.min.js, dash.all.min.js       the players, as npm ships them
#   LICENSE.hls.js                    hls.js: Apache-2.0
#   LICENSE.dashjs.md                 dash.js: BSD-3-Clause
#   dash.all.min.js.LICENSE.txt       notices of what dash.js bundles
#   players.lock                      name, version, tarball, integrity and
#                                     the sha256 of every file written
#
#   scripts/update-players.sh [HLS_VERSION] [DASHJS_VERSION]
#
# The node embeds these files at build time (`include_bytes!`) and fetches
# nothing at run time; a unit test (node/src/http/assets.rs) checks every
# file's sha256 against players.lock, so a hand-edited player fails CI.
# To move to new versions: run this with them, run the tests, commit
# node/assets/players/ whole. Needs curl, tar, sha256sum and python3.
set -euo pipefail

# dash.js stays on 4.x: 5.x moved its bundle (dist/modern/umd/) and
# replaced the setQualityFor API the watch page uses.
HLS_VERSION=${1:-1.7.4}
DASH_VERSION=${2:-4.7.4}

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/node/assets/players"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for tool in curl tar sha256sum python3; do
    command -v "$tool" >/dev/null || {
        echo "update-players.sh: $tool is needed" >&2
        exit 1
    }
done

# fetch NAME VERSION: downloads the tarball to $work/NAME.tgz after reading
# its address and integrity from the registry; prints "TARBALL INTEGRITY".
fetch() {
    local name=$1 version=$2 meta tarball integrity actual
    meta=$(curl -fsSL --retry 3 "https://registry.npmjs.org/$name/$version")
    read -r tarball integrity < <(python3 -c '
import json, sys
dist = json.load(sys.stdin)["dist"]
print(dist["tarball"], dist["integrity"])
' <<<"$meta")
    case $integrity in
    sha512-*) ;;
    *)
        echo "update-players.sh: $name $version: no sha512 integrity in the registry ($integrity)" >&2
        exit 1
        ;;
    esac
    curl -fsSL --retry 3 -o "$work/$name.tgz" "$tarball"
    actual="sha512-$(python3 -c '
import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())
' "$work/$name.tgz")"
    if [[ $actual != "$integrity" ]]; then
        echo "update-players.sh: $name $version: tarball is $actual, the registry says $integrity" >&2
        exit 1
    fi
    echo "$tarball $integrity"
}

# extract NAME MEMBER DEST: one file of the tarball into $work/new/DEST.
extract() {
    local name=$1 member=$2 dest=$3
    mkdir -p "$work/x-$name"
    tar -xzf "$work/$name.tgz" -C "$work/x-$name" "package/$member"
    install -m 0644 "$work/x-$name/package/$member" "$work/new/$dest"
}

sha() { sha256sum "$work/new/$1" | cut -d' ' -f1; }

mkdir -p "$work/new"
read -r hls_tarball hls_integrity < <(fetch hls.js "$HLS_VERSION")
read -r dash_tarball dash_integrity < <(fetch dashjs "$DASH_VERSION")
extract hls.js dist/hls.min.js hls.min.js
extract hls.js LICENSE LICENSE.hls.js
extract dashjs dist/dash.all.min.js dash.all.min.js
extract dashjs LICENSE.md LICENSE.dashjs.md
extract dashjs dist/dash.all.min.js.LICENSE.txt dash.all.min.js.LICENSE.txt

cat >"$work/new/players.lock" <<EOF
# The browser players bundled into vidshard-node (written by
# scripts/update-players.sh; do not edit by hand). A unit test checks
# every file's sha256 against this list.

[[player]]
name = "hls.js"
version = "$HLS_VERSION"
license = "Apache-2.0"
tarball = "$hls_tarball"
integrity = "$hls_integrity"

[[player.file]]
path = "hls.min.js"
sha256 = "$(sha hls.min.js)"

[[player.file]]
path = "LICENSE.hls.js"
sha256 = "$(sha LICENSE.hls.js)"

[[player]]
name = "dashjs"
version = "$DASH_VERSION"
license = "BSD-3-Clause"
tarball = "$dash_tarball"
integrity = "$dash_integrity"

[[player.file]]
path = "dash.all.min.js"
sha256 = "$(sha dash.all.min.js)"

[[player.file]]
path = "LICENSE.dashjs.md"
sha256 = "$(sha LICENSE.dashjs.md)"

[[player.file]]
path = "dash.all.min.js.LICENSE.txt"
sha256 = "$(sha dash.all.min.js.LICENSE.txt)"
EOF

mkdir -p "$out"
for f in "$work"/new/*; do
    mv -f "$f" "$out/$(basename "$f")"
done
echo "node/assets/players: hls.js $HLS_VERSION, dashjs $DASH_VERSION"
