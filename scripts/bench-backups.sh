#!/usr/bin/env bash
# Backup numbers: a 3-node local cluster (release build) encodes a clip
# into a large output (crf 1 H.264), then copies it to 2
# backup nodes. Prints the replication throughput per copy against a plain
# `cp` of the same file on this disk, the time from "job completed" to 2
# verified copies, and the peak RSS of the sending and receiving nodes.
#
#   scripts/bench-backups.sh          SECONDS_OF_VIDEO=30 scripts/bench-backups.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# Every node started here belongs to one cluster: they share its join token.
VIDSHARD_JOIN_TOKEN="$(new_join_token)"
export VIDSHARD_JOIN_TOKEN
ensure_ffmpeg
cargo build --release --workspace --quiet
NODE=target/release/vidshard-node
CLIENT=target/release/vidshard
WORK="${BENCH_DIR:-$(mktemp -d /tmp/vidshard-backups.XXXXXX)}"
mkdir -p "$WORK"
DURATION="${SECONDS_OF_VIDEO:-20}"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

peak_rss_mb() { awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

echo "== a ${DURATION} s 1280x720 clip (with noise, so the output is large)"
ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=30:allf=t" \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$DURATION" \
    -c:v libx264 -preset ultrafast -crf 18 -pix_fmt yuv420p -c:a aac "$WORK/clip.mp4"

p1=$(free_port)
"$NODE" --host 127.0.0.1 --port "$p1" --data-dir "$WORK/n1" --shard-seconds 10 2>"$WORK/n1.log" &
PIDS+=($!)
wait_for_port 127.0.0.1 "$p1" 30
for i in 2 3; do
    p=$(free_port)
    "$NODE" --host 127.0.0.1 --port "$p" --role worker --master "127.0.0.1:$p1" \
        --data-dir "$WORK/n$i" --shard-seconds 10 2>"$WORK/n$i.log" &
    PIDS+=($!)
    wait_for_port 127.0.0.1 "$p" 30
done
sleep 3
echo "== encoding it near-losslessly (crf 1) into a large output"
"$CLIENT" --node "127.0.0.1:$p1" upload "$WORK/clip.mp4" --width 1280 --height 720 \
    --preset ultrafast --crf 1 --id big --output "$WORK/out.mp4" >/dev/null 2>&1
deadline=$((SECONDS + 600))
until [ "$("$CLIENT" --json --node "127.0.0.1:$p1" status big | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["output"]["holders"]))')" -ge 3 ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "no 2 copies within 600 s"; exit 1; }
    sleep 0.2
done
size=$(stat -c %s "$WORK/out.mp4")
python3 - "$WORK/n1.log" "$size" <<'PY'
import re, sys, datetime
log, size = open(sys.argv[1]).read().splitlines(), int(sys.argv[2])
def at(line):
    return datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
done = [l for l in log if "job completed" in l][-1]
copies = [l for l in log if "output copied to a backup node" in l]
print(f"output: {size / 1e6:.0f} MB")
for c in copies:
    mb_s = float(re.search(r"mb_s=([0-9.]+)", c).group(1))
    secs = float(re.search(r"seconds=([0-9.]+)", c).group(1))
    to = re.search(r"to=(\S+)", c).group(1)
    print(f"copy to {to}: {secs:.2f} s, {mb_s:.0f} MB/s (streamed, sha256 checked on arrival, fsynced)")
print(f"job completed -> 2 verified copies: {(at(copies[-1]) - at(done)).total_seconds():.2f} s")
PY
start=$(date +%s.%N)
cp "$WORK/out.mp4" "$WORK/cp-copy.mp4" && sync "$WORK/cp-copy.mp4"
end=$(date +%s.%N)
python3 -c "s=$size; t=$end-$start; print(f'plain cp + sync of the same file: {t:.2f} s, {s/1e6/t:.0f} MB/s')"
echo "peak RSS: sender (master) $(peak_rss_mb "${PIDS[0]}") MiB, receivers $(peak_rss_mb "${PIDS[1]}") MiB and $(peak_rss_mb "${PIDS[2]}") MiB"
