# Shared by scripts/bench.sh and scripts/bench-ladder.sh: timing, a
# generated 1280x720 source, and local clusters of real nodes.
# Callers set WORK, NODE_BIN, CLIENT and PIDS=() and trap stop on EXIT.

now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
peak_rss_mb() { awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
frames_of() { ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$1"; }

make_source() { # OUT SECONDS
  [ -f "$1" ] && return
  local gop=()
  if [ -n "${SOURCE_GOP:-}" ]; then
    gop=(-g "$SOURCE_GOP")
    echo "== making a $2 s 1280x720 clip with audio (a keyframe every $SOURCE_GOP frames at 30 fps)"
  else
    echo "== making a $2 s 1280x720 clip with audio (x264 default GOP: a keyframe every 8.3 s)"
  fi
  ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$2" \
    -c:v libx264 -preset ultrafast -crf 2 -pix_fmt yuv420p "${gop[@]}" -c:a aac "$1"
}

# start_cluster NAME COUNT [node args...]: master + COUNT-1 workers; sets MASTER.
start_cluster() {
  local name=$1 count=$2; shift 2
  local port master_port
  master_port=$(free_port)
  rm -rf "$WORK/$name"; mkdir -p "$WORK/$name"
  "$NODE_BIN" --host 127.0.0.1 --port "$master_port" --data-dir "$WORK/$name/n1" "$@" 2>"$WORK/$name/n1.log" &
  PIDS+=($!); MASTER_PID=$!
  wait_for_port 127.0.0.1 "$master_port" 30
  MASTER="127.0.0.1:$master_port"
  for i in $(seq 2 "$count"); do
    port=$(free_port)
    "$NODE_BIN" --host 127.0.0.1 --port "$port" --role worker --master "$MASTER" \
      --data-dir "$WORK/$name/n$i" "$@" 2>"$WORK/$name/n$i.log" &
    PIDS+=($!)
    wait_for_port 127.0.0.1 "$port" 30
  done
  local deadline=$((SECONDS + 30))
  until [ "$("$CLIENT" --node "$MASTER" --json nodes | python3 -c 'import json,sys; print(sum(n["alive"] for n in json.load(sys.stdin)["nodes"]))')" -ge "$count" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "workers did not join" >&2; exit 1; }
    sleep 0.2
  done
}

stop_cluster() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
