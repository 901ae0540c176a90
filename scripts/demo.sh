#!/usr/bin/env bash
# vidshard demo: build, start a local cluster, encode a synthetic clip.
#
#   scripts/demo.sh [--keep-running]
#
# Works on a fresh Debian with only Rust installed (run as root, or with
# sudo available, so ffmpeg can be installed). Everything it makes goes
# under ./demo-out: the input clip, node data dirs and logs, output.mp4.
# The nodes are stopped at the end unless --keep-running is given.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$VIDSHARD_ROOT"

usage() {
    cat >&2 <<'EOF'
usage: scripts/demo.sh [--keep-running]

  --keep-running  leave the nodes running at the end (prints how to stop them)
EOF
    exit 2
}

keep=0
for arg in "$@"; do
    case "$arg" in
    --keep-running) keep=1 ;;
    -h | --help) usage ;;
    *) log "demo.sh: unknown argument $arg"; usage ;;
    esac
done

# How many nodes to start: node 1 is the master, the others join it as
# workers (each with one encode slot, so the shards visibly spread).
NODES=${NODES:-3}

out=demo-out
node_bin=target/release/vidshard-node
cli=target/release/vidshard

pids=()
finished=0

# shellcheck disable=SC2317 # invoked by the EXIT trap
stop_nodes() {
    if [ "$keep" -eq 1 ] && [ "$finished" -eq 1 ]; then
        return 0
    fi
    local pid
    for pid in "${pids[@]}"; do
        stop_pid "$pid" 15
    done
}
trap stop_nodes EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites ---------------------------------------------------------

section "checking ffmpeg"
ensure_ffmpeg
log "$(ffmpeg -hide_banner -version | head -n1)"

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust first (https://rustup.rs)"

section "building: cargo build --release --workspace"
cargo build --release --workspace
[ -x "$node_bin" ] || die "$node_bin was not built"
[ -x "$cli" ] || die "$cli was not built"

# --- the cluster -----------------------------------------------------------

mkdir -p "$out"
master=""
section "starting $NODES node(s)"
for i in $(seq 1 "$NODES"); do
    port="$(free_port)"
    data="$out/node$i"
    node_log="$out/node$i.log"
    mkdir -p "$data"
    if [ "$i" -eq 1 ]; then
        role=(--role master)
    else
        # Joining takes the cluster's join token, made by node 1.
        role=(--role worker --master "$master" --join-token "$join_token")
    fi
    launch=()
    if [ "$keep" -eq 1 ]; then
        # Its own session: it outlives this script and the terminal's Ctrl-C.
        launch=(setsid)
    fi
    "${launch[@]}" "$node_bin" --host 127.0.0.1 --port "$port" "${role[@]}" --data-dir "$data" --slots 1 \
        >"$node_log" 2>&1 </dev/null &
    pid=$!
    pids+=("$pid")
    if ! wait_for_port 127.0.0.1 "$port" 60 "$pid"; then
        log "--- last lines of $node_log ---"
        tail -n 20 "$node_log" >&2 || true
        die "node $i did not start"
    fi
    log "node $i: ${role[1]} on 127.0.0.1:$port, pid $pid, data $data, log $node_log"
    if [ "$i" -eq 1 ]; then
        master="127.0.0.1:$port"
        # Node 1 founded the cluster: it made the join token (for nodes)
        # and the operator token (for delete, elect, remove) in its data dir.
        join_token="$("$node_bin" token --data-dir "$data")"
        operator_token="$("$node_bin" token --operator --data-dir "$data")"
    fi
done

section "waiting for $NODES node(s) to be alive in the cluster"
deadline=$((SECONDS + 30))
until [ "$("$cli" --node "$master" --json nodes | python3 -c 'import json,sys; print(sum(n["alive"] for n in json.load(sys.stdin)["nodes"]))')" -ge "$NODES" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "the workers did not join within 30 s (see $out/node*.log)"
    sleep 0.2
done
log "$NODES node(s) alive"

# --- the job ---------------------------------------------------------------

clip="$out/input-25s-640x360.mp4"
section "making a 25 s 640x360 test clip with audio: $clip"
"$VIDSHARD_ROOT/scripts/make-clip.sh" "$clip" 25 640x360 30

output="$out/output.mp4"
rm -f "$output"
section "encoding: $cli --node $master upload $clip --width 320 --height 180 --format mp4 --output $output"
if ! "$cli" --node "$master" upload "$clip" --width 320 --height 180 --format mp4 \
    --output "$output" | tee "$out/upload.txt"; then
    log "--- last lines of $out/node1.log ---"
    tail -n 20 "$out/node1.log" >&2 || true
    die "the upload or the job failed"
fi
id="$(head -n1 "$out/upload.txt" | tr -d '[:space:]')"
[ -s "$output" ] || die "no output at $output"

# --- what came out ---------------------------------------------------------

in_frames="$(probe_frames "$clip")"
in_video="$(probe_video "$clip")"
in_audio="$(probe_audio_duration "$clip")"
out_frames="$(probe_frames "$output")"
out_video="$(probe_video "$output")"
out_audio="$(probe_audio_duration "$output")"

section "result"
printf '%-12s %s\n' "job id:" "$id"
printf '%-12s %s (%s bytes)\n' "output:" "$VIDSHARD_ROOT/$output" "$(stat -c %s "$output")"
printf '%-12s %-28s %s\n' "" "input" "output"
printf '%-12s %-28s %s\n' "frames:" "$in_frames" "$out_frames"
printf '%-12s %-28s %s\n' "resolution:" "$(cut -d, -f2 <<<"$in_video")x$(cut -d, -f3 <<<"$in_video")" \
    "$(cut -d, -f2 <<<"$out_video")x$(cut -d, -f3 <<<"$out_video")"
printf '%-12s %-28s %s\n' "codec:" "$(cut -d, -f1 <<<"$in_video")" "$(cut -d, -f1 <<<"$out_video")"
printf '%-12s %-28s %s\n' "audio:" "${in_audio:-none} s" "${out_audio:-none} s"
if [ "$in_frames" = "$out_frames" ]; then
    printf 'every input frame is in the output\n'
else
    printf 'WARNING: frame counts differ (%s in, %s out)\n' "$in_frames" "$out_frames"
fi

section "looking at the cluster"
for cmd in "status $id" jobs nodes; do
    printf '\n$ %s --node %s %s\n' "$cli" "$master" "$cmd"
    # shellcheck disable=SC2086 # split "status ID" into words
    "$cli" --node "$master" $cmd || log "(that command failed)"
done

finished=1
if [ "$keep" -eq 1 ]; then
    printf '\nThe node(s) keep running (pids: %s). Try:\n' "${pids[*]}"
    printf '  %s --node %s status %s\n' "$cli" "$master" "$id"
    printf '  %s --node %s jobs\n' "$cli" "$master"
    printf '  %s --node %s nodes\n' "$cli" "$master"
    printf 'The console (it can also delete and elect, with the operator token):\n'
    printf '  %s --node %s --token %s\n' "$cli" "$master" "$operator_token"
    printf 'Stop them with:\n  kill %s\n' "${pids[*]}"
else
    printf '\nStopping the node(s); rerun with --keep-running to keep them and try:\n'
    printf '  %s --node 127.0.0.1:PORT status %s\n' "$cli" "$id"
    printf '  %s --node 127.0.0.1:PORT jobs\n' "$cli"
    printf '  %s --node 127.0.0.1:PORT nodes\n' "$cli"
    printf '  %s --node 127.0.0.1:PORT --token %s   # the console, with the operator token\n' "$cli" "$operator_token"
fi
