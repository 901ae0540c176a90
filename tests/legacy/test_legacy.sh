#!/usr/bin/env bash
# End-to-end test of a vidshard node through the ORIGINAL wire protocol,
# using tests/legacy/legacy_client.py (which talks like the original Python
# client: 1 MiB upload chunks, base name as video id, 1 MiB + 1 KiB receive
# cap).
#
#   tests/legacy/test_legacy.sh [NODE_BINARY=target/debug/vidshard-node]
#
# Starts its own node on a free 127.0.0.1 port with a temporary data dir,
# prints one PASS/FAIL line per check, stops the node on exit and ends with
# "legacy: N passed, M failed" (exit status 1 when M > 0).
#
# Environment: WAIT_TIMEOUT (seconds per job, default 300), KEEP_WORK=1
# keeps the temporary directory (clip, outputs, node log) for inspection.
set -euo pipefail

caller_cwd="$(pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

# The node binary: as given (relative to the caller's cwd), else relative
# to the repository root.
node_bin="${1:-target/debug/vidshard-node}"
case "$node_bin" in
/*) ;;
*)
    if [ -e "$caller_cwd/$node_bin" ]; then
        node_bin="$caller_cwd/$node_bin"
    else
        node_bin="$root/$node_bin"
    fi
    ;;
esac
cd "$root"

wait_timeout="${WAIT_TIMEOUT:-300}"
mib=1048576

passed=0
failed=0
node_pid=""
work=""

# pass / fail / verdict (counting into passed / failed) come from scripts/lib.sh.

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    if [ -n "$node_pid" ]; then
        stop_pid "$node_pid" 10
        node_pid=""
    fi
    if [ -n "$work" ] && [ -d "$work" ]; then
        if [ "${KEEP_WORK:-0}" = 1 ]; then
            log "kept $work"
        else
            rm -rf "$work"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# finish: stop the node, show its log on failure, print the summary, exit.
finish() {
    if [ -n "$node_pid" ]; then
        if kill -0 "$node_pid" 2>/dev/null; then
            pass "node still running at the end"
        else
            fail "node still running at the end (it exited; see its log)"
        fi
        stop_pid "$node_pid" 10
        node_pid=""
    fi
    if [ "$failed" -gt 0 ] && [ -n "$work" ]; then
        if [ -s "$work/node.log" ]; then
            printf '\n--- last 40 lines of the node log ---\n'
            tail -n 40 "$work/node.log"
        fi
        if [ -s "$work/client.log" ]; then
            printf '\n--- last 20 lines of the client log ---\n'
            tail -n 20 "$work/client.log"
        fi
        printf '\n'
    fi
    printf 'legacy: %d passed, %d failed\n' "$passed" "$failed"
    if [ "$failed" -gt 0 ]; then
        exit 1
    fi
    exit 0
}

# fatal NAME DETAIL: a failed check the rest cannot go on without.
fatal() {
    fail "$1 ($2)"
    finish
}

# --- setup -----------------------------------------------------------------

if [ ! -x "$node_bin" ]; then
    fatal "node binary" "$node_bin is missing or not executable; build it first (cargo build --workspace)"
fi
ensure_ffmpeg
PY="$(ensure_python_grpc)"
work="$(mktemp -d "${TMPDIR:-/tmp}/vidshard-legacy.XXXXXX")"

# client ARGS...: run the legacy client against our node; JSON on stdout,
# diagnostics appended to the client log.
client() {
    "$PY" "$here/legacy_client.py" --node "127.0.0.1:$port" "$@" 2>>"$work/client.log"
}

# jget JSON KEY: a top-level field of a JSON object ("" when absent or not
# JSON; booleans as true/false).
jget() {
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
try:
    doc = json.loads(sys.argv[1].strip().splitlines()[-1])
except Exception:
    doc = {}
value = doc.get(sys.argv[2]) if isinstance(doc, dict) else None
if value is None:
    print("")
elif isinstance(value, bool):
    print("true" if value else "false")
else:
    print(value)
EOF
}

# near A B TOLERANCE: |A - B| <= TOLERANCE (decimal numbers).
near() {
    [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" -v t="$3" \
        'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'
}

# le A B: A <= B (integers, A may be empty = false).
le() {
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -le "$2" ]
}

# --- node --------------------------------------------------------------------

port="$(free_port)"
log "starting $node_bin on 127.0.0.1:$port (data in $work/data)"
"$node_bin" --host 127.0.0.1 --port "$port" --role master --data-dir "$work/data" --shard-seconds 4 \
    >"$work/node.log" 2>&1 &
node_pid=$!
if wait_for_port 127.0.0.1 "$port" 60 "$node_pid"; then
    pass "node listens on 127.0.0.1:$port"
elif ! kill -0 "$node_pid" 2>/dev/null; then
    wait "$node_pid" 2>/dev/null && rc=0 || rc=$?
    node_pid=""
    fatal "node listens on 127.0.0.1:$port" "the node exited with status $rc before opening the port"
else
    fatal "node listens on 127.0.0.1:$port" "the port was not open after 60 s"
fi

# --- the clip ----------------------------------------------------------------

clip="$work/legacy-clip.mp4"
# Keyframe every second: 12 closed GOPs the node may cut at.
if KEYINT=30 "$root/scripts/make-clip.sh" "$clip" 12 640x360 30 2>>"$work/client.log"; then
    pass "make a 12 s 640x360 clip with audio"
else
    fatal "make a 12 s 640x360 clip with audio" "make-clip.sh failed"
fi
in_frames="$(probe_frames "$clip")"
in_audio="$(probe_audio_duration "$clip")"
log "input: $in_frames frames, audio ${in_audio} s, $(stat -c %s "$clip") bytes"

# --- who is master -------------------------------------------------------------

rc=0
doc="$(client master)" || rc=$?
if [ "$rc" -eq 0 ] \
    && [ "$(jget "$doc" master_address)" = "127.0.0.1:$port" ] \
    && [ "$(jget "$doc" is_master_known)" = true ]; then
    ok=0
else
    ok=1
fi
verdict "$ok" "GetCurrentMaster names 127.0.0.1:$port" "rc=$rc: $doc"

rc=0
doc="$(client stats)" || rc=$?
if [ "$rc" -eq 0 ] && [ "$(jget "$doc" is_master)" = true ]; then ok=0; else ok=1; fi
verdict "$ok" "GetNodeStats says this node is the master" "rc=$rc: $doc"

# --- upload, wait, retrieve, verify ------------------------------------------

rc=0
up1="$(client upload "$clip" --width 320 --height 180 --format mp4)" || rc=$?
id1="$(jget "$up1" video_id)"
if [ "$rc" -eq 0 ] && [ "$(jget "$up1" success)" = true ] && [ -n "$id1" ]; then
    pass "upload in 1 MiB chunks (video_id $id1)"
else
    fatal "upload in 1 MiB chunks" "rc=$rc: $up1"
fi

# Same file, same requested video_id (the base name): a new job with its own
# id. It asks for an explicit upscale so its output is larger than 1 MiB and
# the retrieve below crosses several chunks.
rc=0
up2="$(client upload "$clip" --width 320 --height 180 --format mp4 \
    --upscale-width 1280 --upscale-height 720)" || rc=$?
id2="$(jget "$up2" video_id)"
if [ "$rc" -eq 0 ] \
    && [ "$(jget "$up2" success)" = true ] \
    && [ -n "$id2" ] \
    && [ "$id2" != "$id1" ]; then
    ok=0
else
    ok=1
fi
verdict "$ok" "re-upload with the same video_id gets a different id ($id2)" "rc=$rc: $up2"

rc=0
doc="$(client wait "$id1" --timeout "$wait_timeout")" || rc=$?
if [ "$rc" -eq 0 ] && [ "$(jget "$doc" status)" = completed ]; then
    pass "job $id1 completed"
else
    fatal "job $id1 completed" "rc=$rc: $doc"
fi

out1="$work/out-320x180.mp4"
rc=0
doc="$(client retrieve "$id1" "$out1")" || rc=$?
if [ "$rc" -eq 0 ] \
    && [ -s "$out1" ] \
    && le "$(jget "$doc" largest_chunk)" "$mib"; then
    ok=0
else
    ok=1
fi
verdict "$ok" "retrieve $id1 with a 1 MiB + 1 KiB receive cap" "rc=$rc: $doc"

if [ -s "$out1" ]; then
    video="$(probe_video "$out1")"
    if [ "$video" = "h264,320,180" ]; then ok=0; else ok=1; fi
    verdict "$ok" "output is h264 320x180" "got $video"
    frames="$(probe_frames "$out1")"
    if [ "$frames" = "$in_frames" ]; then ok=0; else ok=1; fi
    verdict "$ok" "output has the input's $in_frames frames" "got $frames"
    audio="$(probe_audio_duration "$out1")"
    if near "$audio" "$in_audio" 0.05; then ok=0; else ok=1; fi
    verdict "$ok" "output audio lasts ${in_audio} s +- 0.05 s" "got '${audio}'"
fi

if [ -n "$id2" ]; then
    rc=0
    doc="$(client wait "$id2" --timeout "$wait_timeout")" || rc=$?
    if [ "$rc" -eq 0 ] && [ "$(jget "$doc" status)" = completed ]; then ok=0; else ok=1; fi
    verdict "$ok" "job $id2 (same source, upscaled) completed" "rc=$rc: $doc"
    out2="$work/out-1280x720.mp4"
    rc=0
    doc="$(client retrieve "$id2" "$out2")" || rc=$?
    chunks="$(jget "$doc" chunks)"
    if [ "$rc" -eq 0 ] \
        && [ -s "$out2" ] \
        && le "$(jget "$doc" largest_chunk)" "$mib" \
        && [[ "$chunks" =~ ^[0-9]+$ ]] \
        && [ "$chunks" -ge 2 ]; then
        ok=0
    else
        ok=1
    fi
    verdict "$ok" "retrieve $id2 in several chunks of at most 1 MiB" "rc=$rc: $doc"
    if [ -s "$out2" ]; then
        video="$(probe_video "$out2")"
        frames="$(probe_frames "$out2")"
        if [ "$video" = "h264,1280,720" ] && [ "$frames" = "$in_frames" ]; then ok=0; else ok=1; fi
        verdict "$ok" "upscaled output is h264 1280x720 with $in_frames frames" "got $video, $frames frames"
    fi
fi

# An empty video_id: the master picks one.
rc=0
up3="$(client upload "$clip" --width 320 --height 180 --video-id '')" || rc=$?
id3="$(jget "$up3" video_id)"
if [ "$rc" -eq 0 ] \
    && [ "$(jget "$up3" success)" = true ] \
    && [ -n "$id3" ] \
    && [ "$id3" != "$id1" ] \
    && [ "$id3" != "$id2" ]; then
    ok=0
else
    ok=1
fi
verdict "$ok" "upload with an empty video_id gets an id from the master ($id3)" "rc=$rc: $up3"
if [ -n "$id3" ]; then
    rc=0
    doc="$(client wait "$id3" --timeout "$wait_timeout")" || rc=$?
    if [ "$rc" -eq 0 ] && [ "$(jget "$doc" status)" = completed ]; then ok=0; else ok=1; fi
    verdict "$ok" "job $id3 (default format) completed" "rc=$rc: $doc"
fi

# --- unknown ids ---------------------------------------------------------------

unknown="no-such-video-$$"
rc=0
doc="$(client status "$unknown")" || rc=$?
if [ "$rc" -eq 0 ] && [ "$(jget "$doc" status)" = not_found ]; then ok=0; else ok=1; fi
verdict "$ok" "status of an unknown id is not_found" "rc=$rc: $doc"

rc=0
doc="$(client retrieve "$unknown" "$work/unknown.mp4")" || rc=$?
if [ "$rc" -eq 3 ] \
    && [ "$(jget "$doc" code)" = NOT_FOUND ] \
    && [ ! -e "$work/unknown.mp4" ]; then
    ok=0
else
    ok=1
fi
verdict "$ok" "retrieve of an unknown id fails with NOT_FOUND" "rc=$rc: $doc"

finish
