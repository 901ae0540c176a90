#!/usr/bin/env bash
# Benchmark: vidshard against plain ffmpeg doing the same transcode on the
# same machine, in the same run. Prints wall times, ratios and peak RSS.
#
#   scripts/bench.sh                 # 60 s 1280x720 -> 640x360, 1 GiB upload RSS
#   SECONDS_OF_VIDEO=20 UPLOAD_MB=200 scripts/bench.sh   # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ensure_ffmpeg

DURATION=${SECONDS_OF_VIDEO:-60}
UPLOAD_MB=${UPLOAD_MB:-1024}
PRESET=${PRESET:-veryfast}
CRF=${CRF:-23}
WORK=${BENCH_DIR:-$(mktemp -d /tmp/vidshard-bench.XXXXXX)}
mkdir -p "$WORK"

echo "== building release binaries"
cargo build --release --workspace --quiet
NODE_BIN=target/release/vidshard-node
CLIENT=target/release/vidshard

SRC="$WORK/in720.mp4"
if [ ! -f "$SRC" ]; then
  echo "== making a ${DURATION} s 1280x720 clip with audio (x264 default GOP: a keyframe every 8.3 s)"
  ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$DURATION" \
    -c:v libx264 -preset ultrafast -crf 2 -pix_fmt yuv420p -c:a aac "$SRC"
fi
SRC_MB=$(( $(stat -c %s "$SRC") / 1048576 ))
SRC_FRAMES=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$SRC")

now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

echo "== plain ffmpeg: scale=640:360 libx264 -preset $PRESET -crf $CRF + aac"
t0=$(now)
/usr/bin/time -f "%M" -o "$WORK/plain.rss" ffmpeg -nostdin -v error -y -i "$SRC" \
  -vf scale=640:360 -c:v libx264 -preset "$PRESET" -crf "$CRF" -c:a aac "$WORK/plain.mp4"
t1=$(now)
PLAIN=$(calc "$t1 - $t0")
PLAIN_RSS=$(( $(cat "$WORK/plain.rss") / 1024 ))

echo "== vidshard, 1 node"
PORT=$(free_port)
rm -rf "$WORK/node1"
"$NODE_BIN" --host 127.0.0.1 --port "$PORT" --data-dir "$WORK/node1" 2>"$WORK/node1.log" &
NODE_PID=$!
trap 'kill $NODE_PID 2>/dev/null || true' EXIT
wait_for_port 127.0.0.1 "$PORT" 30
t0=$(now)
"$CLIENT" --node "127.0.0.1:$PORT" --json upload "$SRC" --width 640 --height 360 \
  --preset "$PRESET" --crf "$CRF" --output "$WORK/vidshard.mp4" >"$WORK/upload.json" 2>/dev/null
t1=$(now)
E2E=$(calc "$t1 - $t0")
JOB_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/upload.json")
JOB=$("$CLIENT" --node "127.0.0.1:$PORT" --json status "$JOB_ID")
JOB_SECONDS=$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print((j["updated_unix_ms"]-j["created_unix_ms"])/1000)' "$JOB")
SHARDS=$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(" ".join("%.1f" % s["duration_seconds"] for s in j["shards"]))' "$JOB")
NODE_RSS=$(( $(peak_rss_kb $NODE_PID) / 1024 ))
OUT_FRAMES=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$WORK/vidshard.mp4")
PLAIN_FRAMES=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$WORK/plain.mp4")

echo "== node peak RSS during a ${UPLOAD_MB} MiB upload"
head -c "$((UPLOAD_MB * 1048576))" /dev/urandom >"$WORK/big.bin"
kill $NODE_PID; wait $NODE_PID 2>/dev/null || true
rm -rf "$WORK/node2"
"$NODE_BIN" --host 127.0.0.1 --port "$PORT" --data-dir "$WORK/node2" 2>"$WORK/node2.log" &
NODE_PID=$!
wait_for_port 127.0.0.1 "$PORT" 30
t0=$(now)
"$CLIENT" --node "127.0.0.1:$PORT" upload "$WORK/big.bin" --width 640 --height 360 >/dev/null 2>&1 || true
t1=$(now)
UPLOAD_S=$(calc "$t1 - $t0")
BIG_RSS=$(( $(peak_rss_kb $NODE_PID) / 1024 ))
rm -f "$WORK/big.bin"

printf '\n%-44s %10s %8s %10s\n' "run" "wall s" "ratio" "peak RSS"
printf '%-44s %10.2f %8s %8s MiB\n' "plain ffmpeg (${DURATION}s 720p -> 360p)" "$PLAIN" "1.00" "$PLAIN_RSS"
printf '%-44s %10.2f %8.2f %8s MiB\n' "vidshard 1 node, job (upload ack -> done)" "$JOB_SECONDS" "$(calc "$JOB_SECONDS / $PLAIN")" "$NODE_RSS"
printf '%-44s %10.2f %8.2f\n' "vidshard 1 node, end to end (hash+up+down)" "$E2E" "$(calc "$E2E / $PLAIN")"
echo
echo "source: ${SRC_MB} MiB, ${SRC_FRAMES} frames; output frames: vidshard ${OUT_FRAMES}, plain ${PLAIN_FRAMES}"
echo "shard lengths (s): $SHARDS"
echo "node peak RSS during a ${UPLOAD_MB} MiB upload: ${BIG_RSS} MiB (upload took ${UPLOAD_S} s)"
echo "work dir: $WORK"
