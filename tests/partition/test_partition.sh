#!/usr/bin/env bash
# A real network partition: three nodes, each in its own network namespace
# on one bridge (created here, removed on exit). The leader's link is cut
# in the middle of a job:
#   - the other two elect a new leader and finish the job (correct output);
#   - the cut-off node accepts no upload and hands out no shard;
#   - after healing there is exactly one leader, every node agrees on it
#     and its term, and a command carrying the old leader's term is refused.
#
#   tests/partition/test_partition.sh [NODE_BIN=target/debug/vidshard-node] [CLIENT_BIN=target/debug/vidshard]
#
# Needs root (ip netns). Prints one PASS/FAIL line per check and ends with
# "partition: N passed, M failed" (exit status 1 when M > 0).
# KEEP_WORK=1 keeps the temporary directory (logs, clips).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

absolute() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$(pwd)/$1" ;; esac; }
node_bin="$(absolute "${1:-target/debug/vidshard-node}")"
client_bin="$(absolute "${2:-target/debug/vidshard}")"
[ -x "$node_bin" ] || die "no node binary at $node_bin (cargo build first)"
[ -x "$client_bin" ] || die "no client binary at $client_bin (cargo build first)"
[ "$(id -u)" = 0 ] || die "needs root: it creates network namespaces"
command -v ip >/dev/null 2>&1 || apt_install iproute2
ensure_ffmpeg
PY="$(ensure_python_grpc)"

passed=0
failed=0
tag=$(((RANDOM % 90000) + 10000))
net="10.$((RANDOM % 200 + 20)).$((RANDOM % 250))"
bridge="vsb$tag"
port=7100
work="$(mktemp -d)"
pids=()

cleanup() {
    for pid in "${pids[@]}"; do stop_pid "$pid" 5; done
    for i in 1 2 3; do ip netns del "vsp$tag-$i" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
    if [ "${KEEP_WORK:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

addr() { printf '%s.%s:%s\n' "$net" "$1" "$port"; }
cli() { "$client_bin" --json "$@"; }
# field EXPR: evaluates EXPR over the JSON document on stdin (as `d`).
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# wait_until TIMEOUT_S COMMAND...: polls COMMAND every 0.2 s; fails after TIMEOUT_S.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

log "bridge $bridge, nodes on $net.1-3:$port, work dir $work"
ip link add "$bridge" type bridge
ip link set "$bridge" up
ip addr add "$net.254/24" dev "$bridge"
for i in 1 2 3; do
    ns="vsp$tag-$i"
    ip netns add "$ns"
    ip link add "vsh$tag$i" type veth peer name eth0 netns "$ns"
    ip link set "vsh$tag$i" master "$bridge" up
    ip -n "$ns" addr add "$net.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
done

start_node() {
    local i="$1"
    shift
    ip netns exec "vsp$tag-$i" "$node_bin" --host "$net.$i" --port "$port" \
        --data-dir "$work/n$i" --shard-seconds 2 --slots 1 "$@" >"$work/n$i.log" 2>&1 &
    pids+=($!)
    wait_for_port "$net.$i" "$port" 30 "$!" || die "node $i did not start: $(tail -5 "$work/n$i.log")"
}

start_node 1
# Node 1 founded the cluster and made its join token; the others need it.
join_token="$("$node_bin" token --data-dir "$work/n1")"
export VIDSHARD_JOIN_TOKEN="$join_token"
start_node 2 --role worker --master "$(addr 1)"
start_node 3 --role worker --master "$(addr 1)"

three_voters() {
    [ "$(cli --node "$(addr 1)" nodes | field 'sum(1 for n in d["nodes"] if n["raft_role"] == "voter" and n["alive"])')" = 3 ]
}
if wait_until 30 three_voters; then ok=0; else ok=1; fi
verdict $ok "three nodes in three namespaces form a 3-voter cluster" "$(cli --node "$(addr 1)" nodes || true)"
old_term="$(cli --node "$(addr 1)" nodes | field 'd["term"]')"
leader="$(cli --node "$(addr 1)" nodes | field 'd["master_address"]')"
[ "$leader" = "$(addr 1)" ] || die "expected node 1 to lead, got $leader"

"$root/scripts/make-clip.sh" "$work/clip.mp4" 20 320x240 >/dev/null 2>&1
id="$(cli --node "$(addr 1)" upload "$work/clip.mp4" --width 160 --height 120 --id part | field 'd["id"]')"
some_done() {
    [ "$(cli --node "$(addr 1)" status "$id" | field 'sum(1 for s in d["shards"] if s["state"] == "done")')" -ge 1 ]
}
wait_until 120 some_done || die "no shard finished on the first leader"
log "cutting node 1 (the leader) off"
ip link set "vsh${tag}1" down
cut_at=$SECONDS
# Assignments logged from half a second after the cut on: one whose
# write was acknowledged just before the link went down may still be
# logged right after (counting them before the cut raced with that).
cut_epoch="$(date +%s.%N)"
assigned_since_cut() {
    python3 - "$work/n1.log" "$cut_epoch" <<'PY'
import datetime, sys
cut = float(sys.argv[2]) + 0.5
count = 0
for line in open(sys.argv[1], errors="replace"):
    if "shard assigned" not in line:
        continue
    stamp = line.split()[0].rstrip("Z")
    try:
        at = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        continue
    count += at > cut
print(count)
PY
}
new_leader() {
    local doc
    doc="$(cli --node "$(addr 2)" nodes)"
    [ "$(printf '%s' "$doc" | field 'd["master_address"]')" != "$(addr 1)" ] &&
        [ "$(printf '%s' "$doc" | field 'd["term"]')" -gt "$old_term" ]
}
if wait_until 20 new_leader; then ok=0; else ok=1; fi
verdict $ok "the majority elects a new leader ($((SECONDS - cut_at)) s after the cut)" "no new leader seen by node 2"
new_addr="$(cli --node "$(addr 2)" nodes | field 'd["master_address"]')"
new_term="$(cli --node "$(addr 2)" nodes | field 'd["term"]')"

completed() { [ "$(cli --node "$(addr 2)" status "$id" | field 'd["status"]')" = completed ]; }
if wait_until 240 completed; then ok=0; else ok=1; fi
verdict $ok "the job started on the cut-off leader completes on the new one" \
    "$(cli --node "$(addr 2)" status "$id" | field 'd["status"] + ": " + d["message"]' || true)"
cli --node "$new_addr" retrieve "$id" --output "$work/out.mp4" >/dev/null
frames="$(probe_frames "$work/out.mp4")"
video="$(probe_video "$work/out.mp4")"
if [ "$frames" = "$(probe_frames "$work/clip.mp4")" ] && [ "$video" = "h264,160,120" ]; then ok=0; else ok=1; fi
verdict $ok "its output has every frame at the asked size ($frames frames, $video)" "frames $frames, video $video"

# The cut-off node, asked from inside its own namespace, takes no upload.
"$root/scripts/make-clip.sh" "$work/clip2.mp4" 4 320x240 >/dev/null 2>&1
refused_at=$SECONDS
if ip netns exec "vsp$tag-1" timeout 60 "$client_bin" --node "$(addr 1)" upload "$work/clip2.mp4" \
    --width 160 --height 120 >"$work/isolated-upload.txt" 2>&1; then ok=1; else ok=0; fi
verdict $ok "the cut-off node refuses an upload ($((SECONDS - refused_at)) s: $(tail -1 "$work/isolated-upload.txt"))" \
    "it accepted: $(cat "$work/isolated-upload.txt")"
assigned_after="$(assigned_since_cut)"
if [ "$assigned_after" = 0 ]; then ok=0; else ok=1; fi
verdict $ok "the cut-off node handed out no shard after the cut" "$assigned_after assignments"

log "healing the partition"
ip link set "vsh${tag}1" up
one_leader() {
    local answers
    answers="$("$PY" "$here/cluster_probe.py" "$root" leaders "$(addr 1)" "$(addr 2)" "$(addr 3)")"
    printf '%s\n' "$answers" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
assert all("error" not in r for r in rows), rows
assert sum(1 for r in rows if r["is_master"]) == 1, rows
assert len({(r["master"], r["term"]) for r in rows}) == 1, rows'
}
if wait_until 30 one_leader; then ok=0; else ok=1; fi
verdict $ok "after healing: exactly one leader, and all three agree on it and its term" \
    "$("$PY" "$here/cluster_probe.py" "$root" leaders "$(addr 1)" "$(addr 2)" "$(addr 3)" | tr '\n' ' ')"
node1="$(cli --node "$(addr 1)" nodes | field 'd["master_address"]')"
if [ "$node1" != "$(addr 1)" ]; then ok=0; else ok=1; fi
verdict $ok "the old leader follows the new one (it names $node1)" "it still names itself"

stale="$("$PY" "$here/cluster_probe.py" "$root" stale-push "$(addr 2)" "$old_term")"
if [ "$(printf '%s' "$stale" | field 'd["stored"]')" = False ] &&
    printf '%s' "$stale" | grep -q "older"; then ok=0; else ok=1; fi
verdict $ok "a command with the old leader's term $old_term is refused (new term $new_term)" "$stale"

printf 'partition: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
