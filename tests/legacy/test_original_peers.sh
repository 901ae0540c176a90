#!/usr/bin/env bash
# Wire compatibility in both directions with peers that speak ONLY the
# original protocol (package `replication`), written independently in Python
# grpcio (tests/legacy/original_peers.py):
#
#   A. our node works for an original master: an original master
#      (original_peers.py master-test) sends ProcessShard/RequestShard to our
#      node started with --role worker, and checks the encoded shard and the
#      ReportWorkerShardStatus our node sends back.
#   B. our master uses an original worker: original_peers.py worker announces
#      itself with RegisterWorker; a job uploaded with the legacy client must
#      complete with at least one shard encoded by that original worker.
#
#   tests/legacy/test_original_peers.sh [NODE_BIN=target/debug/vidshard-node] [CLIENT_BIN=target/debug/vidshard]
#
# Every process runs on free 127.0.0.1 ports with temporary directories;
# everything started here is stopped on exit. Prints one PASS/FAIL line per
# check and ends with "original-peers: N passed, M failed" (exit status 1
# when M > 0).
#
# Environment: WAIT_TIMEOUT (seconds for the scenario B job, default 300),
# KEEP_WORK=1 keeps the temporary directory (clips, outputs, logs).
set -euo pipefail

caller_cwd="$(pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

# resolve_bin PATH: as given (relative to the caller's cwd), else relative to
# the repository root.
resolve_bin() {
    case "$1" in
    /*) printf '%s\n' "$1" ;;
    *)
        if [ -e "$caller_cwd/$1" ]; then
            printf '%s\n' "$caller_cwd/$1"
        else
            printf '%s\n' "$root/$1"
        fi
        ;;
    esac
}
node_bin="$(resolve_bin "${1:-target/debug/vidshard-node}")"
client_bin="$(resolve_bin "${2:-target/debug/vidshard}")"
cd "$root"

wait_timeout="${WAIT_TIMEOUT:-300}"

passed=0
failed=0
work=""
# Processes started here (pids), stopped by cleanup.
node_a_pid=""
node_b_pid=""
worker_pid=""
job_pid=""

# pass / fail / verdict (counting into passed / failed) come from scripts/lib.sh.

stop_all() {
    local pid
    for pid in "$job_pid" "$worker_pid" "$node_b_pid" "$node_a_pid"; do
        if [ -n "$pid" ]; then
            stop_pid "$pid" 10
        fi
    done
    job_pid=""
    worker_pid=""
    node_b_pid=""
    node_a_pid=""
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    stop_all
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

# show_log FILE TITLE [LINES=40]: the tail of a log, when it has content.
show_log() {
    if [ -s "$1" ]; then
        printf '\n--- last %s lines of %s ---\n' "${3:-40}" "$2"
        tail -n "${3:-40}" "$1"
    fi
}

finish() {
    stop_all
    if [ "$failed" -gt 0 ] && [ -n "$work" ]; then
        show_log "$work/a/node.log" "our worker node's log (scenario A)"
        show_log "$work/a/master-test.log" "the original master's log (scenario A)"
        show_log "$work/b/node.log" "our master's log (scenario B)"
        show_log "$work/b/worker.log" "the original worker's log (scenario B)"
        show_log "$work/b/client.log" "the client log (scenario B)" 20
        printf '\n'
    fi
    printf 'original-peers: %d passed, %d failed\n' "$passed" "$failed"
    if [ "$failed" -gt 0 ]; then
        exit 1
    fi
    exit 0
}

# run CMD...: run CMD in the background and wait for it, so that INT/TERM
# reach the traps at once (and cleanup stops CMD) instead of after CMD ends.
run() {
    local rc=0
    "$@" </dev/null &
    job_pid=$!
    wait "$job_pid" || rc=$?
    job_pid=""
    return "$rc"
}

# two_ports VAR1 VAR2: two distinct free ports.
two_ports() {
    local a b
    a="$(free_port)"
    b="$(free_port)"
    while [ "$a" = "$b" ]; do
        b="$(free_port)"
    done
    printf -v "$1" '%s' "$a"
    printf -v "$2" '%s' "$b"
}

# near A B TOLERANCE: |A - B| <= TOLERANCE (decimal numbers).
near() {
    [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" -v t="$3" \
        'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'
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

# --- setup -----------------------------------------------------------------

for bin in "$node_bin" "$client_bin"; do
    if [ ! -x "$bin" ]; then
        fail "binaries present ($bin is missing or not executable; build it first: cargo build --workspace)"
        finish
    fi
done
ensure_ffmpeg
PY="$(ensure_python_grpc)"
peers="$here/original_peers.py"
work="$(mktemp -d "${TMPDIR:-/tmp}/vidshard-original-peers.XXXXXX")"

# --- scenario A: our node works for an original master -----------------------

scenario_a() {
    section "scenario A: our node as the worker of an original master"
    local dir="$work/a"
    # The node runs from $dir/n/cwd with its data in $dir/n/data, so a shard
    # id climbing out with ../ (relative to the data dir, a folder in it, or
    # the cwd) lands somewhere under $dir, which master-test scans.
    local data="$dir/n/data"
    mkdir -p "$dir/n/cwd" "$data"
    local p1 p2
    two_ports p1 p2
    log "original master on 127.0.0.1:$p1, our worker node on 127.0.0.1:$p2 (data in $data)"

    # It heartbeats 127.0.0.1:$p1 with our own vidshard.v1 RPC; the original
    # master answers UNIMPLEMENTED and the node keeps retrying: expected.
    (cd "$dir/n/cwd" && exec "$node_bin" --host 127.0.0.1 --port "$p2" --role worker \
        --master "127.0.0.1:$p1" --data-dir "$data") >"$dir/node.log" 2>&1 &
    node_a_pid=$!
    if wait_for_port 127.0.0.1 "$p2" 60 "$node_a_pid"; then
        pass "A: our worker node listens on 127.0.0.1:$p2"
    else
        fail "A: our worker node listens on 127.0.0.1:$p2 (it exited or the port stayed closed for 60 s)"
        return 0
    fi

    local clip="$dir/clip-4s.mp4"
    if "$root/scripts/make-clip.sh" "$clip" 4 320x240 30 2>>"$dir/master-test.log"; then
        pass "A: make a 4 s 320x240 clip with audio"
    else
        fail "A: make a 4 s 320x240 clip with audio (make-clip.sh failed)"
        return 0
    fi

    local rc=0
    run "$PY" "$peers" master-test --worker "127.0.0.1:$p2" --port "$p1" --clip "$clip" \
        --node-data-dir "$data" --scan-dir "$dir" >"$dir/master-test.out" 2>>"$dir/master-test.log" \
        || rc=$?
    # Its PASS/FAIL lines count as ours.
    local line n=0
    while IFS= read -r line; do
        case "$line" in
        "PASS "*) pass "A: ${line#PASS }"; n=$((n + 1)) ;;
        "FAIL "*) fail "A: ${line#FAIL }"; n=$((n + 1)) ;;
        esac
    done <"$dir/master-test.out"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$dir/master-test.out"; then
        fail "A: original master ran (exit $rc without a FAIL line; see its log)"
    elif [ "$n" -eq 0 ]; then
        fail "A: original master ran (no PASS/FAIL lines)"
    fi

    if kill -0 "$node_a_pid" 2>/dev/null; then
        pass "A: our worker node still running at the end"
    else
        fail "A: our worker node still running at the end (it exited; see its log)"
    fi
    stop_pid "$node_a_pid" 10
    node_a_pid=""
}

# --- scenario B: our master uses an original worker ----------------------------

# nodes_has_alive ADDRESS: `vidshard --json nodes` (stdin) lists ADDRESS alive.
nodes_has_alive() {
    "$PY" -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
nodes = doc.get("nodes", []) if isinstance(doc, dict) else []
sys.exit(0 if any(n.get("address") == sys.argv[1] and n.get("alive") is True for n in nodes) else 1)
' "$1"
}

# shards_by_worker ADDRESS: how many shards of `vidshard --json status ID`
# (stdin) name ADDRESS as their worker ("" when the document is not JSON).
shards_by_worker() {
    "$PY" -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    print("")
    sys.exit(0)
shards = doc.get("shards", []) if isinstance(doc, dict) else []
print(sum(1 for s in shards if s.get("worker") == sys.argv[1]))
' "$1"
}

scenario_b() {
    section "scenario B: our master with an original worker"
    local dir="$work/b"
    mkdir -p "$dir/n/cwd" "$dir/n/data" "$dir/w"
    local p3 p4
    two_ports p3 p4
    log "our master on 127.0.0.1:$p4, original worker on 127.0.0.1:$p3"

    (cd "$dir/n/cwd" && exec "$node_bin" --host 127.0.0.1 --port "$p4" --data-dir "$dir/n/data" \
        --slots 1 --shard-seconds 4) >"$dir/node.log" 2>&1 &
    node_b_pid=$!
    if wait_for_port 127.0.0.1 "$p4" 60 "$node_b_pid"; then
        pass "B: our master listens on 127.0.0.1:$p4"
    else
        fail "B: our master listens on 127.0.0.1:$p4 (it exited or the port stayed closed for 60 s)"
        return 0
    fi

    "$PY" "$peers" worker --port "$p3" --master "127.0.0.1:$p4" --work "$dir/w" \
        </dev/null >"$dir/worker.out" 2>"$dir/worker.log" &
    worker_pid=$!
    if wait_for_port 127.0.0.1 "$p3" 30 "$worker_pid" \
        && grep -qx "original worker listening on 127.0.0.1:$p3" "$dir/worker.out"; then
        pass "B: original worker listens on 127.0.0.1:$p3"
    else
        fail "B: original worker listens on 127.0.0.1:$p3 (see its log)"
        return 0
    fi

    # The original worker announces itself with RegisterWorker every 2 s.
    local deadline=$((SECONDS + 30)) seen=1 nodes=""
    while true; do
        nodes="$("$client_bin" --node "127.0.0.1:$p4" --json nodes 2>>"$dir/client.log")" || true
        if printf '%s' "$nodes" | nodes_has_alive "127.0.0.1:$p3"; then
            seen=0
            break
        fi
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.5
    done
    verdict "$seen" "B: our master lists the original worker 127.0.0.1:$p3 as alive" \
        "not within 30 s; last nodes: $nodes"

    local clip="$dir/clip-20s.mp4"
    if "$root/scripts/make-clip.sh" "$clip" 20 320x240 30 2>>"$dir/client.log"; then
        pass "B: make a 20 s 320x240 clip with audio"
    else
        fail "B: make a 20 s 320x240 clip with audio (make-clip.sh failed)"
        return 0
    fi
    local in_frames in_audio
    in_frames="$(probe_frames "$clip")"
    in_audio="$(probe_audio_duration "$clip")"
    log "input: $in_frames frames, audio ${in_audio} s, $(stat -c %s "$clip") bytes"

    local legacy=("$PY" "$here/legacy_client.py" --node "127.0.0.1:$p4")
    local rc=0 doc id
    run "${legacy[@]}" upload "$clip" --width 160 --height 120 \
        >"$dir/upload.json" 2>>"$dir/client.log" || rc=$?
    doc="$(cat "$dir/upload.json")"
    id="$(jget "$doc" video_id)"
    if [ "$rc" -eq 0 ] && [ "$(jget "$doc" success)" = true ] && [ -n "$id" ]; then
        pass "B: upload with the legacy client (video_id $id)"
    else
        fail "B: upload with the legacy client (rc=$rc: $doc)"
        return 0
    fi

    rc=0
    run "${legacy[@]}" wait "$id" --timeout "$wait_timeout" >"$dir/wait.json" 2>>"$dir/client.log" \
        || rc=$?
    doc="$(cat "$dir/wait.json")"
    if [ "$rc" -eq 0 ] && [ "$(jget "$doc" status)" = completed ]; then
        pass "B: job $id completed"
    else
        fail "B: job $id completed (rc=$rc: $doc)"
    fi

    local out="$dir/out-160x120.mp4"
    rc=0
    run "${legacy[@]}" retrieve "$id" "$out" >"$dir/retrieve.json" 2>>"$dir/client.log" || rc=$?
    doc="$(cat "$dir/retrieve.json")"
    if [ "$rc" -eq 0 ] && [ -s "$out" ]; then
        pass "B: retrieve $id with the legacy client"
        local video frames audio ok
        video="$(probe_video "$out")"
        if [ "$video" = "h264,160,120" ]; then ok=0; else ok=1; fi
        verdict "$ok" "B: output is h264 160x120" "got $video"
        frames="$(probe_frames "$out")"
        if [ "$frames" = "$in_frames" ]; then ok=0; else ok=1; fi
        verdict "$ok" "B: output has the input's $in_frames frames" "got $frames"
        audio="$(probe_audio_duration "$out")"
        if near "$audio" "$in_audio" 0.05; then ok=0; else ok=1; fi
        verdict "$ok" "B: output audio lasts ${in_audio} s +- 0.05 s" "got '${audio}'"
    else
        fail "B: retrieve $id with the legacy client (rc=$rc: $doc)"
    fi

    # Our master told it who leads (AnnounceMaster with the Raft term).
    if grep -qE "^announcement: master 127\.0\.0\.1:$p4 \(node-[0-9a-f]+\) term [1-9][0-9]*$" "$dir/worker.out"; then
        pass "B: our master announced itself to the original worker with its Raft term"
    else
        fail "B: no AnnounceMaster from our master reached the original worker ($(grep announcement "$dir/worker.out" || echo none))"
    fi

    # The original worker really did work.
    rc=0
    doc="$("$client_bin" --node "127.0.0.1:$p4" --json status "$id" 2>>"$dir/client.log")" || rc=$?
    printf '%s\n' "$doc" >"$dir/status.json"
    local by_worker
    by_worker="$(printf '%s' "$doc" | shards_by_worker "127.0.0.1:$p3")"
    if [ "$rc" -eq 0 ] && [[ "$by_worker" =~ ^[0-9]+$ ]] && [ "$by_worker" -ge 1 ]; then
        pass "B: $by_worker shard(s) of $id were encoded by the original worker 127.0.0.1:$p3"
    else
        fail "B: at least one shard of $id was encoded by the original worker 127.0.0.1:$p3 (rc=$rc, shards by it: '${by_worker}'; status in $dir/status.json)"
    fi

    if kill -0 "$worker_pid" 2>/dev/null; then
        pass "B: original worker still running at the end"
    else
        fail "B: original worker still running at the end (it exited; see its log)"
    fi
    if kill -0 "$node_b_pid" 2>/dev/null; then
        pass "B: our master still running at the end"
    else
        fail "B: our master still running at the end (it exited; see its log)"
    fi
    # The original worker stops cleanly on SIGTERM.
    kill -TERM "$worker_pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while kill -0 "$worker_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    if kill -0 "$worker_pid" 2>/dev/null; then
        fail "B: original worker exits cleanly on SIGTERM (still running after 10 s)"
        stop_pid "$worker_pid" 1
    else
        rc=0
        wait "$worker_pid" || rc=$?
        verdict "$rc" "B: original worker exits cleanly on SIGTERM" "exit status $rc"
    fi
    worker_pid=""
    stop_pid "$node_b_pid" 10
    node_b_pid=""
}

scenario_a
scenario_b
finish
