#!/usr/bin/env bash
# Benchmark: vidshard against plain ffmpeg doing the same transcode on the
# same machine, in the same run. Prints wall times, ratios to plain ffmpeg,
# where vidshard's time went, projected speedups on more machines, and the
# node's peak RSS during a large upload.
#
#   scripts/bench.sh                               # 60 s 1280x720 -> 640x360, 1 GiB upload
#   SECONDS_OF_VIDEO=20 UPLOAD_MB=200 scripts/bench.sh   # quicker
#   PROJECT_SECONDS=600 scripts/bench.sh           # also measure shards of a 10 min clip
#   NODE_BIN=old/vidshard-node CLIENT=old/vidshard scripts/bench.sh   # another build
#   SOURCE_GOP=60 scripts/bench.sh                 # sources with a keyframe every 2 s
#   CODECS="hevc av1" scripts/bench.sh             # the codec table for these only
#   CODECS= scripts/bench.sh                       # no codec table
#
# The codec table: each codec on the same clip, plain ffmpeg (the encoder
# arguments vidshard uses, media/encode.rs) vs vidshard 1 node and 3 nodes,
# with the output's size and PSNR against the source scaled the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# Every node started here belongs to one cluster: they share its join token.
VIDSHARD_JOIN_TOKEN="$(new_join_token)"
export VIDSHARD_JOIN_TOKEN
ensure_ffmpeg

DURATION=${SECONDS_OF_VIDEO:-60}
UPLOAD_MB=${UPLOAD_MB:-1024}
PRESET=${PRESET:-veryfast}
CRF=${CRF:-23}
WORK=${BENCH_DIR:-$(mktemp -d /tmp/vidshard-bench.XXXXXX)}
mkdir -p "$WORK"
NODE_BIN=${NODE_BIN:-target/release/vidshard-node}
CLIENT=${CLIENT:-target/release/vidshard}
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

echo "== building release binaries"
cargo build --release --workspace --quiet

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

# run_job SRC OUT [options...]: uploads with --output, leaves the status
# JSON in $WORK/last.json.
run_job() {
  local t0 t1 src=$1 out=$2
  shift 2
  local options=("$@")
  [ "${#options[@]}" -gt 0 ] || options=(--preset "$PRESET" --crf "$CRF")
  t0=$(now)
  "$CLIENT" --node "$MASTER" --json upload "$src" --width 640 --height 360 \
    "${options[@]}" --output "$out" >"$WORK/upload.json" 2>/dev/null
  t1=$(now)
  E2E=$(calc "$t1 - $t0")
  local id
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/upload.json")
  "$CLIENT" --node "$MASTER" --json status "$id" >"$WORK/last.json"
  JOB_S=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["timings"]["total_seconds"])' "$WORK/last.json")
}

SRC="$WORK/in720-${DURATION}s.mp4"
make_source "$SRC" "$DURATION"
SRC_MB=$(( $(stat -c %s "$SRC") / 1048576 ))

echo "== plain ffmpeg: scale=640:360 libx264 -preset $PRESET -crf $CRF + aac"
t0=$(now)
/usr/bin/time -f "%M" -o "$WORK/plain.rss" ffmpeg -nostdin -v error -y -i "$SRC" \
  -vf scale=640:360 -c:v libx264 -preset "$PRESET" -crf "$CRF" -c:a aac "$WORK/plain.mp4"
t1=$(now)
PLAIN=$(calc "$t1 - $t0")
PLAIN_RSS=$(( $(cat "$WORK/plain.rss") / 1024 ))

echo "== vidshard, 1 node (default slots: one per core)"
start_cluster one 1
run_job "$SRC" "$WORK/one.mp4"
ONE_JOB=$JOB_S; ONE_E2E=$E2E; ONE_RSS=$(peak_rss_mb "$MASTER_PID")
cp "$WORK/last.json" "$WORK/one.json"
stop_cluster

echo "== vidshard, 1 node, --no-quality (no comparison with the source)"
start_cluster bare 1
run_job "$SRC" "$WORK/bare.mp4" --preset "$PRESET" --crf "$CRF" --no-quality
BARE_JOB=$JOB_S; BARE_E2E=$E2E
stop_cluster

echo "== vidshard, 3 nodes on this machine (1 slot each)"
start_cluster three 3 --slots 1
run_job "$SRC" "$WORK/three.mp4"
THREE_JOB=$JOB_S; THREE_E2E=$E2E; THREE_RSS=$(peak_rss_mb "$MASTER_PID")
cp "$WORK/last.json" "$WORK/three.json"
stop_cluster

# PSNR (all planes, mean over frames) of OUT against SRC scaled to 640x360.
psnr_of() {
  ffmpeg -nostdin -hide_banner -i "$1" -i "$2" -lavfi \
    "[1:v]scale=640:360,format=yuv420p[r];[0:v]format=yuv420p[e];[e][r]psnr" -f null - 2>&1 |
    sed -n 's/.*PSNR.*average:\([0-9.inf]*\).*/\1/p' | tail -n1
}

# The encoder arguments vidshard uses for CODEC at $PRESET (media/encode.rs).
encoder_args() {
  case "$1" in
    h264) echo "-c:v libx264 -preset $PRESET -crf ${2}" ;;
    hevc) echo "-c:v libx265 -preset $PRESET -crf ${2} -x265-params log-level=error" ;;
    av1)  echo "-c:v libsvtav1 -preset 10 -crf ${2}" ;;
    vp9)  echo "-c:v libvpx-vp9 -crf ${2} -b:v 0 -deadline good -cpu-used 6 -row-mt 1" ;;
  esac
}

CODEC_ROWS=()
for codec in ${CODECS-h264 hevc av1 vp9}; do
  case "$codec" in h264) crf=23 ;; hevc) crf=28 ;; av1) crf=35 ;; vp9) crf=32 ;; *) continue ;; esac
  # Audio as vidshard treats it: the AAC source copied into mkv, Opus
  # 128k for webm.
  if [ "$codec" = vp9 ]; then ext=webm; audio=(-c:a libopus -b:a 128k); else ext=mkv; audio=(-c:a copy); fi
  echo "== codec table: $codec (crf $crf, preset $PRESET) in $ext"
  t0=$(now)
  # shellcheck disable=SC2046
  ffmpeg -nostdin -v error -y -i "$SRC" -vf scale=640:360 $(encoder_args "$codec" "$crf") \
    "${audio[@]}" "$WORK/plain-$codec.$ext"
  t1=$(now)
  plain_s=$(calc "$t1 - $t0")
  start_cluster "c1-$codec" 1
  run_job "$SRC" "$WORK/one-$codec.$ext" --codec "$codec" --format "$ext" --preset "$PRESET" --crf "$crf" --no-quality
  one_s=$JOB_S
  stop_cluster
  start_cluster "c3-$codec" 3 --slots 1
  run_job "$SRC" "$WORK/three-$codec.$ext" --codec "$codec" --format "$ext" --preset "$PRESET" --crf "$crf" --no-quality
  three_s=$JOB_S
  stop_cluster
  row="$codec"
  for run in "plain:$plain_s" "one:$one_s" "three:$three_s"; do
    name=${run%%:*} secs=${run#*:}
    f="$WORK/$name-$codec.$ext"
    row="$row|$secs|$(calc "$secs / $plain_s")|$(stat -c %s "$f")|$(psnr_of "$f" "$SRC")"
  done
  CODEC_ROWS+=("$row")
done

PROJECT_JSON="$WORK/one.json"
if [ -n "${PROJECT_SECONDS:-}" ]; then
  echo "== vidshard, 1 node, ${PROJECT_SECONDS} s clip (shard times for the projection)"
  LONG="$WORK/in720-${PROJECT_SECONDS}s.mp4"
  make_source "$LONG" "$PROJECT_SECONDS"
  start_cluster long 1
  run_job "$LONG" "$WORK/long.mp4"
  LONG_RSS=$(peak_rss_mb "$MASTER_PID")
  LONG_MB=$(( $(stat -c %s "$LONG") / 1048576 ))
  cp "$WORK/last.json" "$WORK/long.json"
  PROJECT_JSON="$WORK/long.json"
  stop_cluster
fi

echo "== node peak RSS during a ${UPLOAD_MB} MiB upload"
head -c "$((UPLOAD_MB * 1048576))" /dev/urandom >"$WORK/big.bin"
start_cluster big 1
t0=$(now)
"$CLIENT" --node "$MASTER" upload "$WORK/big.bin" --width 640 --height 360 >/dev/null 2>&1 || true
t1=$(now)
UPLOAD_S=$(calc "$t1 - $t0")
BIG_RSS=$(peak_rss_mb "$MASTER_PID")
stop_cluster
rm -f "$WORK/big.bin"

printf '\n%-48s %8s %7s %9s\n' "run (${DURATION} s 1280x720 -> 640x360, ${SRC_MB} MiB)" "wall s" "ratio" "peak RSS"
printf '%-48s %8.2f %7s %6s MiB\n' "plain ffmpeg" "$PLAIN" "1.00" "$PLAIN_RSS"
printf '%-48s %8.2f %7.2f %6s MiB\n' "vidshard 1 node: job (upload acked -> done)" "$ONE_JOB" "$(calc "$ONE_JOB / $PLAIN")" "$ONE_RSS"
printf '%-48s %8.2f %7.2f\n' "vidshard 1 node: client end to end" "$ONE_E2E" "$(calc "$ONE_E2E / $PLAIN")"
printf '%-48s %8.2f %7.2f\n' "vidshard 1 node, --no-quality: job" "$BARE_JOB" "$(calc "$BARE_JOB / $PLAIN")"
printf '%-48s %8.2f %7.2f\n' "vidshard 1 node, --no-quality: end to end" "$BARE_E2E" "$(calc "$BARE_E2E / $PLAIN")"
printf '%-48s %8.2f %7.2f %6s MiB\n' "vidshard 3 nodes on this box: job" "$THREE_JOB" "$(calc "$THREE_JOB / $PLAIN")" "$THREE_RSS"
printf '%-48s %8.2f %7.2f\n' "vidshard 3 nodes on this box: client end to end" "$THREE_E2E" "$(calc "$THREE_E2E / $PLAIN")"
echo "(end to end adds hashing the file, the upload and the download on loopback; RSS is the master's, ffmpeg children excluded)"
echo
echo "frames: source $(frames_of "$SRC"), plain $(frames_of "$WORK/plain.mp4"), 1 node $(frames_of "$WORK/one.mp4"), 3 nodes $(frames_of "$WORK/three.mp4")"
python3 - "$WORK/one.json" "$WORK/three.json" "$PROJECT_JSON" <<'PY'
import json, sys, heapq
one, three, proj = (json.load(open(p)) for p in sys.argv[1:4])
measured_long = sys.argv[3] != sys.argv[1]
def stages(name, j):
    t = j["timings"]
    workers = sorted({s["worker"] for s in j["shards"]})
    print(f"{name}: probe+split {t['probe_split_seconds']:.2f} s, encode stage {t['encode_stage_seconds']:.2f} s "
          f"(shard encodes: sum {t['shard_encode_sum_seconds']:.2f} s, longest {t['shard_encode_max_seconds']:.2f} s), "
          f"transfers {t['transfer_sum_seconds']:.2f} s, join {t['join_seconds']:.2f} s; shards on {len(workers)} node(s)")
stages("1 node ", one)
stages("3 nodes", three)
print("shard lengths (s): " + " ".join(f"{s['duration_seconds']:.1f}" for s in one["shards"]))
# Projection: machines like this one (2 slots each), shards placed longest
# first on the least-loaded slot; fixed costs (probe/split, join) as measured.
t = proj["timings"]
times = [s["encode_seconds"] for s in proj["shards"]]
label = f"{proj['source']['duration_seconds']:.0f} s clip"
if not measured_long:
    times = times * 10
    label = f"10 min clip (the {one['source']['duration_seconds']:.0f} s clip's shard times x10)"
scale = 1 if measured_long else 10
# Not overlapped with encoding: the probe and plan (total - encode stage -
# join), the first shard's share of the split, and the join.
probe = max(0.0, t["total_seconds"] - t["encode_stage_seconds"] - t["join_seconds"])
first_shard = t["probe_split_seconds"] / max(1, len(proj["shards"]))
fixed = (probe + first_shard + t["join_seconds"]) * scale
def makespan(times, slots):
    heap = [0.0] * slots
    for x in sorted(times, reverse=True):
        heapq.heappush(heap, heapq.heappop(heap) + x)
    return max(heap)
base = fixed + makespan(times, 2)
print(f"projection for a {label}, shards of ~10 s, 2 slots per machine, transfers not included")
print(f"  (not overlapped with encoding: {fixed:.2f} s of probe, first shard and join; shard encodes sum {sum(times):.1f} s):")
for machines in (1, 2, 4, 8, 16):
    wall = fixed + makespan(times, 2 * machines)
    print(f"  {machines:2d} machine(s): {wall:7.1f} s  speedup {base / wall:5.2f}x")
PY
if [ "${#CODEC_ROWS[@]}" -gt 0 ]; then
  echo
  echo "codec table (${DURATION} s 1280x720 -> 640x360, preset $PRESET, each codec's default crf; vidshard with --no-quality;"
  echo "PSNR of each output against the source scaled the same way, ratios and size differences to plain ffmpeg):"
  python3 - "${CODEC_ROWS[@]}" <<'PY'
import sys
print(f"{'codec':6} {'run':8} {'wall s':>8} {'ratio':>6} {'bytes':>10} {'size':>7} {'PSNR dB':>8} {'ΔPSNR':>6}")
for row in sys.argv[1:]:
    codec, *cells = row.split("|")
    runs = [cells[i:i + 4] for i in range(0, len(cells), 4)]
    plain_bytes, plain_psnr = int(runs[0][2]), float(runs[0][3])
    for name, (secs, ratio, size, psnr) in zip(("plain", "1 node", "3 nodes"), runs):
        print(f"{codec:6} {name:8} {float(secs):8.2f} {float(ratio):6.2f} {int(size):10d} "
              f"{100 * (int(size) / plain_bytes - 1):+6.1f}% {float(psnr):8.2f} {float(psnr) - plain_psnr:+6.2f}")
PY
fi
echo "node peak RSS during a ${UPLOAD_MB} MiB upload: ${BIG_RSS} MiB (upload took ${UPLOAD_S} s)"
if [ -n "${LONG_RSS:-}" ]; then
  echo "master peak RSS over the whole ${PROJECT_SECONDS} s job (${LONG_MB} MiB input, 1 node): ${LONG_RSS} MiB"
fi
echo "work dir: $WORK"
