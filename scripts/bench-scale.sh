#!/usr/bin/env bash
# Scaling benchmark on emulated machines (needs root): N "machines" on this
# box, each a network namespace on one bridge, with a rate-limited link
# (tc, on both ends of its veth) and a CPU quota of its own (a cgroup:
# cpu.max on cgroup v2, cpu.cfs_quota_us on v1), running one vidshard-node.
# Plain ffmpeg, in a cgroup with one machine's quota, is the baseline.
# Reports, for every N in MACHINES: end-to-end wall time, speedup against
# the baseline and efficiency, the projection of scripts/bench.sh (from
# the smallest run's shard times) beside the measured speedup, time in
# upload / split / encodes / transfers / join / download, bytes moved per
# machine, and for each N below the target which stage ate the time.
#
#   scripts/bench-scale.sh                                 # 1 2 4 8 machines, 180 s of 720p
#   CLIP_SECONDS=30 MACHINES="1 2" scripts/bench-scale.sh  # a quick check (a few minutes)
#
# Environment (defaults in brackets):
#   MACHINES ["1 2 4 8"]   machine counts to run, one fresh cluster each
#   CPU_PER_MACHINE [0.2]  cores of each machine's quota (and the baseline's)
#   CPU_PERIOD_US [100000] the quota's period: a machine that used its share
#                          waits for the next period, so RPCs to it can wait
#                          up to 80 % of this (a smaller period spreads it)
#   CLIP_SECONDS [180]     source length; WIDTH x HEIGHT [1280x720], FPS [30],
#   KEYINT_SECONDS [2]     a closed-GOP keyframe this often; SOURCE_CRF [2]
#                          (x264 ultrafast, as scripts/bench.sh's source)
#   OUT_WIDTH x OUT_HEIGHT [640x360]  output box; PRESET [veryfast], CRF [23]
#   RATE [1gbit], DELAY [0.5ms]  each machine's link (delay needs netem in
#                          the kernel; without it only the rate is applied)
#   SLOTS [1]              --slots of every node
#   SHARD_SECONDS []       --shard-seconds of every node (empty: the node's default)
#   NODE_BIN, CLIENT       binaries (default target/release/…, built with cargo
#                          unless both are given or BUILD=0)
#   JOB_TIMEOUT [3600]     seconds one job may take
#   CLIP_CACHE []          a directory to keep generated clips in between runs
#   WORK [a new /var/tmp/vidshard-bench-scale.XXXXXX]  work dir, removed at the end
#                          unless KEEP_WORK=1 (then `scripts/bench-scale-report.py WORK`
#                          prints the report again); a kept one is never removed by a rerun
#   SUBNET [10.77.0]       bridge 10.77.0.1/24, machine i at 10.77.0.(10+i)
#
# The client (`vidshard upload … --output`) runs in the root namespace,
# in a cgroup of its own without a quota, and reaches the machines through
# the bridge. The bench's cgroups get a large cpu.shares / cpu.weight, so
# other work on the box (a build) cannot starve a machine below its quota;
# the report still says how busy the box was, since 8 x 0.2 cores on 2
# cores leaves little room. Besides the table, each run's section tells
# the master's and workers' CPU by kind of process (sampled), the slot
# time of the encode stage (busy, waiting for the split, after the last
# assignment), Raft timeouts, and the time above the ideal (baseline / N)
# split by stage. Everything (nodes, namespaces, bridge, cgroups, work
# dir) is removed at exit, and leftovers of an interrupted run are removed
# before starting.
set -Eeuo pipefail
# A command failing under set -e says where, instead of ending the run silently.
trap 'printf "error: line %s: %s exited %s\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$HERE/lib.sh"

MACHINES=${MACHINES:-"1 2 4 8"}
CPU_PER_MACHINE=${CPU_PER_MACHINE:-0.2}
CPU_PERIOD_US=${CPU_PERIOD_US:-100000}
CLIP_SECONDS=${CLIP_SECONDS:-180}
WIDTH=${WIDTH:-1280}
HEIGHT=${HEIGHT:-720}
FPS=${FPS:-30}
KEYINT_SECONDS=${KEYINT_SECONDS:-2}
SOURCE_CRF=${SOURCE_CRF:-2}
OUT_WIDTH=${OUT_WIDTH:-640}
OUT_HEIGHT=${OUT_HEIGHT:-360}
PRESET=${PRESET:-veryfast}
CRF=${CRF:-23}
RATE=${RATE:-1gbit}
DELAY=${DELAY:-0.5ms}
SLOTS=${SLOTS:-1}
SHARD_SECONDS=${SHARD_SECONDS:-}
JOB_TIMEOUT=${JOB_TIMEOUT:-3600}
CLIP_CACHE=${CLIP_CACHE:-}
WORK_PREFIX=/var/tmp/vidshard-bench-scale.
WORK=${WORK:-}
KEEP_WORK=${KEEP_WORK:-0}
SUBNET=${SUBNET:-10.77.0}
PORT=50051

# Names of everything this script creates (fixed, so a rerun finds the
# leftovers of an interrupted one).
TAG=vsbs
BRIDGE="${TAG}br0"
CG_NAME=vidshard-bench
LOCK=/run/lock/vidshard-bench-scale.lock

usage() {
    sed -n '2,/^set -/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}
case "${1:-}" in
-h | --help) usage ;;
"") ;;
*) log "bench-scale.sh takes no arguments (settings are environment variables)"; usage ;;
esac

# --- checks ----------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || die "run it as root: it creates network namespaces, a bridge, tc qdiscs and cgroups"
for n in $MACHINES; do
    if ! [[ "$n" =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt 200 ]; then
        die "MACHINES must be whole numbers 1..200, got '$MACHINES'"
    fi
done
if ! [[ "$CPU_PERIOD_US" =~ ^[0-9]+$ ]] || [ "$CPU_PERIOD_US" -lt 1000 ] || [ "$CPU_PERIOD_US" -gt 1000000 ]; then
    die "CPU_PERIOD_US must be 1000..1000000, got '$CPU_PERIOD_US'"
fi
[[ "$CPU_PER_MACHINE" =~ ^[0-9]*\.?[0-9]+$ ]] || die "CPU_PER_MACHINE must be a number of cores, got '$CPU_PER_MACHINE'"
[[ "$SLOTS" =~ ^[1-9][0-9]*$ ]] || die "SLOTS must be a positive whole number, got '$SLOTS'"
[ -z "$SHARD_SECONDS" ] || [[ "$SHARD_SECONDS" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SHARD_SECONDS must be a number, got '$SHARD_SECONDS'"
[[ "$CLIP_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "CLIP_SECONDS must be a whole number of seconds, got '$CLIP_SECONDS'"
[[ "$SUBNET" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "SUBNET must be three octets like 10.77.0, got '$SUBNET'"

need_cmd() { # CMD PACKAGE
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
    command -v "$1" >/dev/null 2>&1 || die "$1 still missing after installing $2"
}
ensure_ffmpeg
need_cmd ip iproute2
need_cmd tc iproute2
need_cmd nsenter util-linux
need_cmd flock util-linux
need_cmd python3 python3
REPORT="$HERE/bench-scale-report.py"
[ -f "$REPORT" ] || die "missing $REPORT (it prints the report)"

exec 9>"$LOCK"
flock -n 9 || die "another bench-scale.sh is running (lock $LOCK)"

cd "$ROOT"
if [ -z "${NODE_BIN:-}" ] || [ -z "${CLIENT:-}" ]; then
    if [ "${BUILD:-1}" = 1 ]; then
        command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust, or give NODE_BIN and CLIENT"
        section "building release binaries (cargo build --release --workspace)"
        cargo build --release --workspace --quiet
    fi
fi
NODE_BIN=$(realpath "${NODE_BIN:-target/release/vidshard-node}")
CLIENT=$(realpath "${CLIENT:-target/release/vidshard}")
[ -x "$NODE_BIN" ] || die "no node binary at $NODE_BIN"
[ -x "$CLIENT" ] || die "no client binary at $CLIENT"

# --- cgroups -----------------------------------------------------------------

# CG_MODE v2: one dir per machine under $CG_V2/$CG_NAME with cpu.max.
# CG_MODE v1: dirs under the cpu hierarchy (cpu.cfs_quota_us) and, when
# mounted apart, the cpuacct one (CPU time used).
CG_MODE=""
CG_V2=""
CG_CPU=""
CG_ACCT=""
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
    CG_MODE=v2
    CG_V2=/sys/fs/cgroup
else
    # v1 (or hybrid): find the hierarchies holding cpu and cpuacct.
    while read -r _ dir fstype opts _; do
        [ "$fstype" = cgroup ] || continue
        case ",$opts," in *,cpu,*) CG_CPU=$dir ;; esac
        case ",$opts," in *,cpuacct,*) CG_ACCT=$dir ;; esac
    done </proc/self/mounts
    if [ -n "$CG_CPU" ] && [ -f "$CG_CPU/cpu.cfs_quota_us" ]; then
        CG_MODE=v1
    fi
fi
[ -n "$CG_MODE" ] || die "no cgroup cpu controller with a quota here: neither cgroup v2 with 'cpu' in /sys/fs/cgroup/cgroup.controllers nor a v1 cpu hierarchy with cpu.cfs_quota_us"

PERIOD=$CPU_PERIOD_US
QUOTA=$(python3 -c "import sys; print(max(1000, round(float(sys.argv[1]) * $PERIOD)))" "$CPU_PER_MACHINE")
[ "$QUOTA" -le $((PERIOD * $(nproc))) ] || die "CPU_PER_MACHINE $CPU_PER_MACHINE is more than this box's $(nproc) cores"
# Threads of each encoder, as the node gives its slots (config::encoder_threads:
# the cores the quota allows, at least 1, shared among the slots); the
# baseline's x264 gets the same.
THREADS=$(python3 -c "import sys; print(max(1, max(1, int(float(sys.argv[1]))) // int(sys.argv[2])))" "$CPU_PER_MACHINE" "$SLOTS")

cg_dirs() { # NAME: the dirs of one group, one per hierarchy
    case "$CG_MODE" in
    v2) printf '%s\n' "$CG_V2/$CG_NAME/$1" ;;
    v1)
        printf '%s\n' "$CG_CPU/$CG_NAME/$1"
        if [ -n "$CG_ACCT" ] && [ "$CG_ACCT" != "$CG_CPU" ]; then printf '%s\n' "$CG_ACCT/$CG_NAME/$1"; fi
        ;;
    esac
}

cg_bases() {
    case "$CG_MODE" in
    v2) printf '%s\n' "$CG_V2/$CG_NAME" ;;
    v1)
        printf '%s\n' "$CG_CPU/$CG_NAME"
        if [ -n "$CG_ACCT" ] && [ "$CG_ACCT" != "$CG_CPU" ]; then printf '%s\n' "$CG_ACCT/$CG_NAME"; fi
        ;;
    esac
}

cg_create() { # NAME [QUOTA_US, "max"/-1 for none]
    local d
    case "$CG_MODE" in
    v2)
        grep -qw cpu "$CG_V2/cgroup.subtree_control" || echo +cpu >"$CG_V2/cgroup.subtree_control"
        mkdir -p "$CG_V2/$CG_NAME"
        grep -qw cpu "$CG_V2/$CG_NAME/cgroup.subtree_control" || echo +cpu >"$CG_V2/$CG_NAME/cgroup.subtree_control"
        # Ahead of whatever else runs here (a build, a test): the
        # machines must get their quotas, which cap them anyway.
        echo 10000 >"$CG_V2/$CG_NAME/cpu.weight"
        mkdir -p "$CG_V2/$CG_NAME/$1"
        echo "${2:-$QUOTA} $PERIOD" >"$CG_V2/$CG_NAME/$1/cpu.max"
        ;;
    v1)
        while read -r d; do mkdir -p "$d"; done < <(cg_dirs "$1")
        echo 102400 >"$CG_CPU/$CG_NAME/cpu.shares"
        echo "$PERIOD" >"$CG_CPU/$CG_NAME/$1/cpu.cfs_period_us"
        echo "${2:-$QUOTA}" >"$CG_CPU/$CG_NAME/$1/cpu.cfs_quota_us"
        ;;
    esac
}

# cg_procs_files NAME: the cgroup.procs files a process joins (space-separated).
cg_procs_files() {
    local d files=""
    while read -r d; do files="$files $d/cgroup.procs"; done < <(cg_dirs "$1")
    printf '%s\n' "${files# }"
}

# cg_usage NAME: "cpu_ns throttled_ns" used so far by the group.
cg_usage() {
    local usage=0 throttled=0
    case "$CG_MODE" in
    v2)
        usage=$(awk '$1 == "usage_usec" {print $2 * 1000}' "$CG_V2/$CG_NAME/$1/cpu.stat")
        throttled=$(awk '$1 == "throttled_usec" {print $2 * 1000}' "$CG_V2/$CG_NAME/$1/cpu.stat")
        ;;
    v1)
        if [ -n "$CG_ACCT" ] && [ -f "$CG_ACCT/$CG_NAME/$1/cpuacct.usage" ]; then
            usage=$(cat "$CG_ACCT/$CG_NAME/$1/cpuacct.usage")
        elif [ -f "$CG_CPU/$CG_NAME/$1/cpuacct.usage" ]; then
            usage=$(cat "$CG_CPU/$CG_NAME/$1/cpuacct.usage")
        fi
        throttled=$(awk '$1 == "throttled_time" {print $2}' "$CG_CPU/$CG_NAME/$1/cpu.stat")
        ;;
    esac
    printf '%s %s\n' "${usage:-0}" "${throttled:-0}"
}

# box_busy: CPU time (USER_HZ ticks) the whole box has been busy, for the
# load outside the machines during a run.
box_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# CG_PROCS="$(cg_procs_files NAME)" "${IN_CG[@]}" CMD...: runs CMD inside
# the group, exec'd (a simple command, so `&` gives CMD's own PID).
# shellcheck disable=SC2016 # $$ and $CG_PROCS are the inner shell's
IN_CG=(sh -c 'for f in $CG_PROCS; do echo $$ >"$f"; done; exec "$@"' sh)

# Kills every process left in our groups (all started by this script or
# an interrupted run of it), then removes the groups.
cg_teardown() {
    [ -n "$CG_MODE" ] || return 0
    local base d pid round
    while read -r base; do
        [ -d "$base" ] || continue
        for round in 1 2 3 4 5 6 7 8 9 10; do
            local left=0
            for d in "$base"/*/; do
                [ -f "$d/cgroup.procs" ] || continue
                while read -r pid; do
                    [ -n "$pid" ] || continue
                    left=1
                    if [ "$round" -le 2 ]; then kill -TERM "$pid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
                done <"$d/cgroup.procs"
            done
            [ "$left" -eq 1 ] || break
            sleep 0.3
        done
        for d in "$base"/*/; do
            if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || true; fi
        done
        rmdir "$base" 2>/dev/null || log "could not remove cgroup $base"
    done < <(cg_bases)
}

# --- network -----------------------------------------------------------------

ns_of() { printf '%s-m%s\n' "$TAG" "$1"; }
veth_of() { printf '%s-h%s\n' "$TAG" "$1"; }
ip_of() { printf '%s.%s\n' "$SUBNET" $((10 + $1)); }
addr_of() { printf '%s:%s\n' "$(ip_of "$1")" "$PORT"; }

# The link's shaping: netem (delay + rate) where the kernel has it, else a
# token bucket (tbf) for the rate alone. Decided once, on the first veth.
SHAPING=""
# tbf burst: 10 ms at the rate (at least 64 KiB), above rate/HZ at any HZ.
tbf_burst() {
    python3 - "$RATE" <<'PY'
import re, sys
m = re.fullmatch(r"([0-9.]+)\s*([kmgt]?)(bit|bps)?", sys.argv[1].lower())
if not m:
    sys.exit(f"bad RATE {sys.argv[1]!r} (use e.g. 1gbit, 500mbit)")
value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}[m.group(2)]
bits = value * 8 if m.group(3) == "bps" else value
print(max(65536, int(bits / 8 / 100)))
PY
}

shape() { # NSARGS... -- DEV  (tc inside a namespace or here)
    local dev=$1
    shift
    case "$SHAPING" in
    netem) "$@" tc qdisc replace dev "$dev" root netem delay "$DELAY" rate "$RATE" limit 10000 ;;
    tbf) "$@" tc qdisc replace dev "$dev" root tbf rate "$RATE" burst "$BURST" latency 50ms ;;
    esac
}

net_setup() { # MAX
    local i ns veth
    ip link add "$BRIDGE" type bridge
    ip addr add "$SUBNET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    BURST=$(tbf_burst)
    for i in $(seq 1 "$1"); do
        ns=$(ns_of "$i")
        veth=$(veth_of "$i")
        ip netns add "$ns"
        ip link add "$veth" type veth peer name "${TAG}-p$i"
        ip link set "${TAG}-p$i" netns "$ns"
        ip -n "$ns" link set "${TAG}-p$i" name eth0
        ip -n "$ns" addr add "$(ip_of "$i")/24" dev eth0
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        ip link set "$veth" master "$BRIDGE" up
        if [ -z "$SHAPING" ]; then
            if tc qdisc replace dev "$veth" root netem delay "$DELAY" rate "$RATE" limit 10000 2>/dev/null; then
                SHAPING=netem
            else
                SHAPING=tbf
                log "this kernel has no netem (tc: 'Specified qdisc kind is unknown'): links get tbf rate $RATE (burst $BURST bytes) without the $DELAY delay"
            fi
        fi
        shape "$veth"
        shape eth0 ip netns exec "$ns"
    done
}

net_teardown() {
    local ns pid link
    # Namespaces named by this script, and any process still in one.
    while read -r ns _; do
        case "$ns" in "$TAG"-m*) ;; *) continue ;; esac
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done < <(ip netns list 2>/dev/null)
    while read -r link; do
        ip link del "$link" 2>/dev/null || true
    done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${TAG}-h[0-9]+$" || true)
    ip link del "$BRIDGE" 2>/dev/null || true
}

# --- nodes -------------------------------------------------------------------

PIDS=()
SAMPLER=""

stop_nodes() {
    local pid deadline
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 15))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    # Encoders and watchers the nodes left (all in our groups).
    local i d pid
    for i in $(seq 1 "$MAX"); do
        while read -r d; do
            [ -f "$d/cgroup.procs" ] || continue
            while read -r pid; do
                if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
            done <"$d/cgroup.procs"
        done < <(cg_dirs "m$i")
    done
}

# start_node I RUNDIR [extra args...]
start_node() {
    local i=$1 run=$2
    shift 2
    local args=(--host "$(ip_of "$i")" --port "$PORT" --data-dir "$run/n$i" --slots "$SLOTS" --log-format json)
    [ -z "$SHARD_SECONDS" ] || args+=(--shard-seconds "$SHARD_SECONDS")
    # nsenter enters the network namespace only: `ip netns exec` would also
    # remount /sys, hiding the cgroup from the node, whose Rust std then
    # sees 2 cores instead of the quota (slots, encoder threads).
    CG_PROCS="$(cg_procs_files "m$i")" "${IN_CG[@]}" nsenter --net="/run/netns/$(ns_of "$i")" -- \
        "$NODE_BIN" "${args[@]}" "$@" >"$run/n$i.log" 2>&1 </dev/null &
    PIDS+=($!)
}

# cluster_ready N: all N nodes members and alive, and a master known.
cluster_ready() {
    local doc
    doc=$("$CLIENT" --node "$NODES_CSV" --json nodes 2>/dev/null) || return 1
    printf '%s' "$doc" | python3 -c '
import json, sys
d = json.load(sys.stdin)
alive = sum(1 for n in d["nodes"] if n["alive"])
sys.exit(0 if d.get("master_address") and alive >= int(sys.argv[1]) else 1)' "$1"
}

# --- cleanup -------------------------------------------------------------------

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    [ -z "$SAMPLER" ] || kill -TERM "$SAMPLER" 2>/dev/null
    [ "${#PIDS[@]}" -eq 0 ] || stop_nodes
    cg_teardown
    net_teardown
    if [ -z "$WORK" ]; then
        :
    elif [ "$KEEP_WORK" = 1 ]; then
        touch "$WORK/KEPT"
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}

section "removing leftovers of an earlier run"
MAX=0
cg_teardown
net_teardown
# Work dirs of runs that were killed before their cleanup (a kept one
# has a KEPT file and stays).
for d in "$WORK_PREFIX"*/; do
    if [ -d "$d" ] && [ ! -e "$d/KEPT" ]; then rm -rf "$d"; fi
done
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d "${WORK_PREFIX}XXXXXX")
elif [ -e "$WORK/KEPT" ]; then
    WORK_KEPT=$WORK
    WORK=""
    die "WORK=$WORK_KEPT holds a kept run; remove it or choose another directory"
else
    rm -rf "$WORK"
    mkdir -p "$WORK"
fi
log "work dir $WORK"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for n in $MACHINES; do [ "$n" -gt "$MAX" ] && MAX=$n; done

# --- the clip ------------------------------------------------------------------

GOP=$((KEYINT_SECONDS * FPS))
CLIP_NAME="src-${CLIP_SECONDS}s-${WIDTH}x${HEIGHT}-${FPS}fps-g${GOP}-crf${SOURCE_CRF}.mp4"
if [ -n "$CLIP_CACHE" ]; then mkdir -p "$CLIP_CACHE"; SRC="$CLIP_CACHE/$CLIP_NAME"; else SRC="$WORK/$CLIP_NAME"; fi
if [ ! -f "$SRC" ]; then
    section "making a ${CLIP_SECONDS} s ${WIDTH}x${HEIGHT} clip: a closed-GOP keyframe every $GOP frames, x264 ultrafast crf $SOURCE_CRF, AAC"
    ffmpeg -nostdin -v error -y \
        -f lavfi -i "testsrc2=size=${WIDTH}x${HEIGHT}:rate=${FPS}:duration=${CLIP_SECONDS}" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=${CLIP_SECONDS}" \
        -map 0:v:0 -map 1:a:0 -c:v libx264 -preset ultrafast -crf "$SOURCE_CRF" -pix_fmt yuv420p \
        -g "$GOP" -keyint_min "$GOP" -sc_threshold 0 -x264-params open-gop=0 \
        -c:a aac -b:a 128k -ac 2 -movflags +faststart -t "$CLIP_SECONDS" "$SRC.partial.mp4"
    mv "$SRC.partial.mp4" "$SRC"
fi
SRC_FRAMES=$(probe_frames "$SRC")
[ "$SRC_FRAMES" = $((CLIP_SECONDS * FPS)) ] || die "the clip has $SRC_FRAMES frames, not $((CLIP_SECONDS * FPS))"
# The GOP as the node will see it: distance between keyframes, in frames.
GOP_SEEN=$(ffprobe -v error -select_streams v:0 -show_entries packet=flags -of csv=p=0 "$SRC" |
    awk '{n++} /K/ {if (last) {d = n - last; if (d > m) m = d; k++}; last = n} END {printf "%d keyframes, at most %d frames apart\n", k + 1, m}')
log "clip $SRC: $SRC_FRAMES frames, $(($(stat -c %s "$SRC") / 1048576)) MiB, $GOP_SEEN"

# --- machines --------------------------------------------------------------------

section "making $MAX machine(s): namespaces on bridge $BRIDGE ($SUBNET.1/24), $RATE links, $CPU_PER_MACHINE core each (cgroup $CG_MODE)"
net_setup "$MAX"
cg_create plain
for i in $(seq 1 "$MAX"); do cg_create "m$i"; done
# The client: no quota, but ahead of other work on the box like the machines.
if [ "$CG_MODE" = v2 ]; then cg_create client max; else cg_create client -1; fi
NS_CHECK=$(ip netns exec "$(ns_of 1)" ip -o -4 addr show dev eth0 | awk '{print $4}')
log "machine 1 is $NS_CHECK in $(ns_of 1); its link: $(tc qdisc show dev "$(veth_of 1)" | sed -n 1p)"

{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machines $MACHINES"
    echo "cpu_per_machine $CPU_PER_MACHINE"
    echo "quota_us $QUOTA"
    echo "period_us $PERIOD"
    echo "cgroup $CG_MODE"
    echo "threads $THREADS"
    echo "slots $SLOTS"
    echo "shard_seconds ${SHARD_SECONDS:-default}"
    echo "rate $RATE"
    echo "delay $DELAY"
    echo "shaping $SHAPING"
    echo "clip_seconds $CLIP_SECONDS"
    echo "clip_size ${WIDTH}x${HEIGHT}"
    echo "clip_fps $FPS"
    echo "clip_bytes $(stat -c %s "$SRC")"
    echo "clip_frames $SRC_FRAMES"
    echo "clip_gop $GOP_SEEN"
    echo "out_size ${OUT_WIDTH}x${OUT_HEIGHT}"
    echo "preset $PRESET"
    echo "crf $CRF"
    echo "cores $(nproc)"
    echo "clk_tck $(getconf CLK_TCK)"
    echo "node_bin $NODE_BIN"
    echo "node_version $("$NODE_BIN" --version 2>/dev/null | sed -n 1p)"
} >"$WORK/meta.txt"

# --- baseline: plain ffmpeg under one machine's quota ------------------------------

section "baseline: plain ffmpeg under one machine's quota ($CPU_PER_MACHINE core): scale to ${OUT_WIDTH}x${OUT_HEIGHT}, x264 $PRESET crf $CRF, -threads $THREADS, audio copied"
read -r u0 _ < <(cg_usage plain)
b0=$(box_busy)
t0=$(date +%s.%N)
CG_PROCS="$(cg_procs_files plain)" "${IN_CG[@]}" ffmpeg -nostdin -v error -y -i "$SRC" -map 0:v:0 -map '0:a:0?' -c:a copy \
    -vf "scale=${OUT_WIDTH}:${OUT_HEIGHT}:flags=bicubic,setsar=1" -c:v libx264 -preset "$PRESET" -crf "$CRF" \
    -pix_fmt yuv420p -threads "$THREADS" -movflags +faststart "$WORK/plain.mp4"
t1=$(date +%s.%N)
b1=$(box_busy)
read -r u1 _ < <(cg_usage plain)
PLAIN_FRAMES=$(probe_frames "$WORK/plain.mp4")
{
    echo "wall $(python3 -c "print($t1 - $t0)")"
    echo "cpu_ns $((u1 - u0))"
    echo "frames $PLAIN_FRAMES"
    echo "box_busy_ticks $((b1 - b0))"
    echo "bytes $(stat -c %s "$WORK/plain.mp4")"
} >"$WORK/baseline.txt"
log "baseline: $(python3 -c "print(f'{$t1 - $t0:.1f}')") s, $(python3 -c "print(f'{($u1 - $u0) / 1e9:.1f}')") CPU-s, $PLAIN_FRAMES frames"
[ "$PLAIN_FRAMES" = "$SRC_FRAMES" ] || log "warning: plain ffmpeg made $PLAIN_FRAMES frames, the source has $SRC_FRAMES"
rm -f "$WORK/plain.mp4"

# --- one cluster per machine count ---------------------------------------------------

for n in $MACHINES; do
    run="$WORK/run-$n"
    mkdir -p "$run"
    section "$n machine(s): starting $n node(s)"
    NODES_CSV=$(for i in $(seq 1 "$n"); do addr_of "$i"; done | paste -sd, -)
    start_node 1 "$run"
    wait_for_port "$(ip_of 1)" "$PORT" 60 "${PIDS[0]}" || die "node 1 did not start: $(tail -n 5 "$run/n1.log")"
    # Node 1 founded the cluster and made its join token; the others need it.
    "$NODE_BIN" token --data-dir "$run/n1" >"$run/join-token"
    [ -s "$run/join-token" ] || die "no join token from node 1"
    for i in $(seq 2 "$n"); do
        start_node "$i" "$run" --role worker --master "$(addr_of 1)" --join-token-file "$run/join-token"
    done
    for i in $(seq 2 "$n"); do
        wait_for_port "$(ip_of "$i")" "$PORT" 60 "${PIDS[$((i - 1))]}" || die "node $i did not start: $(tail -n 5 "$run/n$i.log")"
    done
    deadline=$((SECONDS + 180))
    until cluster_ready "$n"; do
        [ "$SECONDS" -lt "$deadline" ] || die "the $n nodes did not all become alive members with a master within 180 s: $("$CLIENT" --node "$NODES_CSV" nodes 2>&1 | tail -n 12)"
        sleep 0.5
    done
    "$CLIENT" --node "$NODES_CSV" --json nodes >"$run/nodes.json"
    log "$n node(s) alive, master $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["master_address"])' "$run/nodes.json")"

    : >"$run/counters.txt"
    for i in $(seq 1 "$n"); do
        read -r cpu thr < <(cg_usage "m$i")
        echo "before $i $(cat "/sys/class/net/$(veth_of "$i")/statistics/rx_bytes") $(cat "/sys/class/net/$(veth_of "$i")/statistics/tx_bytes") $cpu $thr" >>"$run/counters.txt"
    done
    section "$n machine(s): upload, encode, download"
    # CPU per kind of process on each machine (encode, split, join, ffprobe...).
    specs=()
    for i in $(seq 1 "$n"); do specs+=("$i=$(cg_dirs "m$i" | sed -n 1p)/cgroup.procs"); done
    python3 "$REPORT" --sample "$run/cpu-by-process.json" "${specs[@]}" &
    SAMPLER=$!
    read -r c0 _ < <(cg_usage client)
    b0=$(box_busy)
    t0=$(date +%s.%N)
    if ! CG_PROCS="$(cg_procs_files client)" "${IN_CG[@]}" "$CLIENT" --node "$NODES_CSV" --json upload "$SRC" --width "$OUT_WIDTH" --height "$OUT_HEIGHT" \
        --preset "$PRESET" --crf "$CRF" --no-quality --timeout "$JOB_TIMEOUT" \
        --output "$run/out.mp4" >"$run/upload.json" 2>"$run/client.err"; then
        die "the job on $n machine(s) failed: $(cat "$run/upload.json" "$run/client.err" | tail -n 5)"
    fi
    t1=$(date +%s.%N)
    b1=$(box_busy)
    read -r c1 _ < <(cg_usage client)
    kill -TERM "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    SAMPLER=""
    for i in $(seq 1 "$n"); do
        read -r cpu thr < <(cg_usage "m$i")
        echo "after $i $(cat "/sys/class/net/$(veth_of "$i")/statistics/rx_bytes") $(cat "/sys/class/net/$(veth_of "$i")/statistics/tx_bytes") $cpu $thr" >>"$run/counters.txt"
    done
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$run/upload.json")
    "$CLIENT" --node "$NODES_CSV" --json status "$id" >"$run/status.json"
    out_frames=$(probe_frames "$run/out.mp4")
    {
        echo "machines $n"
        echo "t0 $t0"
        echo "t1 $t1"
        echo "out_frames $out_frames"
        echo "out_bytes $(stat -c %s "$run/out.mp4")"
        echo "box_busy_ticks $((b1 - b0))"
        echo "client_cpu_ns $((c1 - c0))"
    } >"$run/client.txt"
    log "$n machine(s): $(python3 -c "print(f'{$t1 - $t0:.1f}')") s end to end, $out_frames/$SRC_FRAMES frames"
    [ "$out_frames" = "$SRC_FRAMES" ] || die "the output of $n machine(s) has $out_frames frames, the source $SRC_FRAMES"
    rm -f "$run/out.mp4"
    # CPU of each node process itself (gRPC, hashing, Raft, files) and of
    # the ffmpeg/ffprobe runs it waited for (clock ticks).
    for i in $(seq 1 "$n"); do
        pid=${PIDS[$((i - 1))]}
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = vidshard-node ] || { log "process $pid of machine $i is not vidshard-node"; continue; }
        echo "proc $i $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13, $14 + $15}')" >>"$run/counters.txt"
    done
    stop_nodes
    for i in $(seq 1 "$n"); do rm -rf "$run/n$i"; done
    # Progress so far, in case a later run fails.
    python3 "$REPORT" "$WORK" --brief >&2 || true
done

section "report"
python3 "$REPORT" "$WORK"
