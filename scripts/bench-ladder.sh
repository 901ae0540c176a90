#!/usr/bin/env bash
# Benchmark: a 3-rung HLS/DASH ladder (720/480/360) made by vidshard vs
# plain ffmpeg making the same ladder in one process (split=3, the same
# x264 capped-CRF settings and keyframes, the hls muxer with fMP4
# segments), on this machine in the same run. Prints wall times and
# ratios, the time to first playable segment against one piece's encode,
# and the node's peak RSS for two video lengths (it should not grow with
# the length).
#
#   scripts/bench-ladder.sh                           # 60 s 1280x720 source
#   SECONDS_OF_VIDEO=20 scripts/bench-ladder.sh       # quicker
#   LONG_SECONDS=0 scripts/bench-ladder.sh            # skip the RSS-vs-length run
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
VIDSHARD_JOIN_TOKEN="$(new_join_token)"
export VIDSHARD_JOIN_TOKEN
ensure_ffmpeg

DURATION=${SECONDS_OF_VIDEO:-60}
LONG=${LONG_SECONDS:-$((DURATION * 3))}
PRESET=${PRESET:-veryfast}
CRF=${CRF:-23}
SEGMENT=${SEGMENT_SECONDS:-4}
WORK=${BENCH_DIR:-$(mktemp -d /tmp/vidshard-ladder-bench.XXXXXX)}
mkdir -p "$WORK"
NODE_BIN=${NODE_BIN:-target/release/vidshard-node}
CLIENT=${CLIENT:-target/release/vidshard}
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

echo "== building release binaries"
cargo build --release --workspace --quiet
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

# The rungs and their H.264 caps (kbit/s), as proto/src/params/ladder.rs
# plans them for a 1280x720 source.
RUNGS=(1280:720:3000 854:480:1200 640:360:700)

plain_ladder() { # SRC OUT_DIR
  local src=$1 out=$2 filter="[0:v]split=${#RUNGS[@]}" maps=() caps=() streams=()
  rm -rf "$out"; mkdir -p "$out"
  for i in "${!RUNGS[@]}"; do filter+="[s$i]"; done
  filter+=";"
  for i in "${!RUNGS[@]}"; do
    IFS=: read -r w h k <<<"${RUNGS[$i]}"
    filter+="[s$i]scale=$w:$h:flags=bicubic,setsar=1[v$i];"
    maps+=(-map "[v$i]")
    caps+=("-maxrate:v:$i" "${k}k" "-bufsize:v:$i" "$((k * 2))k")
    streams+=("v:$i,agroup:audio")
  done
  streams+=("a:0,agroup:audio")
  ffmpeg -nostdin -v error -y -i "$src" -filter_complex "${filter%;}" "${maps[@]}" -map 0:a \
    -c:v libx264 -preset "$PRESET" -crf "$CRF" -x264-params scenecut=0:open-gop=0 -g 100000 \
    -force_key_frames "expr:if(isnan(prev_forced_t),1,gte(t-prev_forced_t,$SEGMENT))" \
    -forced-idr 1 "${caps[@]}" -c:a copy \
    -f hls -hls_time "$SEGMENT" -hls_playlist_type vod -hls_segment_type fmp4 \
    -hls_segment_filename "$out/v%v/%d.m4s" -master_pl_name master.m3u8 \
    -var_stream_map "${streams[*]}" "$out/v%v/media.m3u8"
}

# ladder_job NAME: uploads $SRC as a ladder to $MASTER and waits; leaves
# the status JSON in $WORK/NAME.json and the wall time in WALL.
ladder_job() {
  local t0 t1 name=$1 src=$2
  shift 2
  t0=$(now)
  "$CLIENT" --node "$MASTER" --json upload "$src" --ladder 720,480,360 \
    --segment-seconds "$SEGMENT" --preset "$PRESET" --crf "$CRF" "$@" \
    --output "$WORK/$name.mp4" >"$WORK/$name.upload.json" 2>/dev/null
  t1=$(now)
  WALL=$(calc "$t1 - $t0")
  local id
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/$name.upload.json")
  "$CLIENT" --node "$MASTER" --json status "$id" >"$WORK/$name.json"
}

SRC="$WORK/in720-${DURATION}s.mp4"
make_source "$SRC" "$DURATION"

echo "== plain ffmpeg: one process, split=3, the hls muxer with fMP4 segments"
t0=$(now)
plain_ladder "$SRC" "$WORK/plain"
t1=$(now)
PLAIN=$(calc "$t1 - $t0")

echo "== vidshard, 1 node (one slot per core)"
start_cluster one 1
ladder_job one "$SRC"
ONE=$WALL; ONE_RSS=$(peak_rss_mb "$MASTER_PID")
stop_cluster

echo "== vidshard, 1 node, --no-quality (no comparison with the source)"
start_cluster bare 1
ladder_job bare "$SRC" --no-quality
BARE=$WALL
stop_cluster

echo "== vidshard, 3 nodes on this machine (1 slot each)"
start_cluster three 3 --slots 1
ladder_job three "$SRC"
THREE=$WALL
stop_cluster

LONG_RSS=""
if [ "$LONG" -gt 0 ]; then
  LONG_SRC="$WORK/in720-${LONG}s.mp4"
  make_source "$LONG_SRC" "$LONG"
  echo "== vidshard, 1 node, a ${LONG} s source (peak RSS against length)"
  start_cluster long 1
  ladder_job long "$LONG_SRC"
  LONG_RSS=$(peak_rss_mb "$MASTER_PID")
  stop_cluster
fi

echo
echo "3-rung ladder (720/480/360, ${SEGMENT} s segments) of a ${DURATION} s 1280x720 clip, x264 $PRESET crf $CRF capped"
printf '%-30s %8s %7s\n' run "wall s" ratio
printf '%-30s %8.2f %7.2f\n' "plain ffmpeg" "$PLAIN" 1
printf '%-30s %8.2f %7.2f\n' "vidshard 1 node" "$ONE" "$(calc "$ONE / $PLAIN")"
printf '%-30s %8.2f %7.2f\n' "vidshard 1 node, --no-quality" "$BARE" "$(calc "$BARE / $PLAIN")"
printf '%-30s %8.2f %7.2f\n' "vidshard 3 nodes" "$THREE" "$(calc "$THREE / $PLAIN")"
for name in one bare three; do
  python3 - "$WORK/$name.json" "$name" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))
ladder = job["ladder"]
first = [s for s in job["shards"] if s["piece"] == 0]
slowest_first = max(s["encode_seconds"] for s in first)
print(f"{sys.argv[2]:>5}: first playable {ladder['first_playable_seconds']:.2f} s after the upload was accepted; "
      f"the first piece's slowest rung encoded in {slowest_first:.2f} s "
      f"(target: first playable <= that + 2 s: {'met' if ladder['first_playable_seconds'] <= slowest_first + 2 else 'NOT met'}); "
      f"job {job['timings']['total_seconds']:.2f} s")
for r in ladder["renditions"]:
    print(f"       {r['id']:>6} {r['segments']:3d} segments {r['seconds']:7.2f} s  avg {r['average_bitrate'] / 1000:7.0f} kb/s  peak {r['peak_bitrate'] / 1000:7.0f} kb/s")
PY
done
echo "node peak RSS: ${ONE_RSS} MiB for ${DURATION} s${LONG_RSS:+; ${LONG_RSS} MiB for ${LONG} s}"
echo "work dir: $WORK"
