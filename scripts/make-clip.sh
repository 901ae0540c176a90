#!/usr/bin/env bash
# Make a synthetic test clip with ffmpeg's lavfi sources: testsrc2 video and
# a 440 Hz sine tone (48 kHz stereo).
#
#   scripts/make-clip.sh OUT [DURATION_S=10] [WxH=640x360] [FPS=30] [--no-audio]
#
# Container from OUT's extension: .mp4/.mkv/.mov get H.264 (libx264,
# yuv420p) + AAC, .webm gets VP9 + Opus. The clip has exactly DURATION*FPS
# frames and a keyframe every KEYINT frames (env, default 2 s = 2*FPS,
# scene-cut keyframes off so the GOPs are regular). Installs ffmpeg when it
# is missing. Writes OUT atomically.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
    cat >&2 <<'EOF'
usage: make-clip.sh OUT [DURATION_S=10] [WxH=640x360] [FPS=30] [--no-audio]

  OUT         output file: .mp4, .mkv, .mov (H.264 + AAC) or .webm (VP9 + Opus)
  DURATION_S  length in seconds (a positive number; DURATION*FPS must be whole)
  WxH         frame size, even numbers, e.g. 1280x720
  FPS         frames per second (a positive integer)
  --no-audio  video only

environment: KEYINT=N  keyframe every N frames (default 2*FPS)
EOF
    exit 2
}

audio=1
positional=()
for arg in "$@"; do
    case "$arg" in
    --no-audio) audio=0 ;;
    -h | --help) usage ;;
    -*) log "make-clip.sh: unknown option $arg"; usage ;;
    *) positional+=("$arg") ;;
    esac
done
if [ "${#positional[@]}" -lt 1 ] || [ "${#positional[@]}" -gt 4 ]; then
    usage
fi

out="${positional[0]}"
duration="${positional[1]:-10}"
size="${positional[2]:-640x360}"
fps="${positional[3]:-30}"

[ -n "$out" ] || usage
[[ "$duration" =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)$ ]] || { log "bad DURATION_S: $duration"; usage; }
[[ "$size" =~ ^([0-9]+)x([0-9]+)$ ]] || { log "bad WxH: $size"; usage; }
width="${BASH_REMATCH[1]}"
height="${BASH_REMATCH[2]}"
if ! [[ "$fps" =~ ^[0-9]+$ ]] || [ "$fps" -eq 0 ]; then
    log "bad FPS: $fps"
    usage
fi
if [ "$width" -lt 2 ] || [ "$height" -lt 2 ] || [ $((width % 2)) -ne 0 ] || [ $((height % 2)) -ne 0 ]; then
    log "bad WxH: $size (both sides must be even and at least 2 for yuv420p)"
    usage
fi

# frames = DURATION * FPS, which must be a positive whole number.
frames="$(awk -v d="$duration" -v f="$fps" 'BEGIN {
    n = d * f; r = int(n + 0.5)
    if (r < 1 || (n - r) > 1e-6 || (r - n) > 1e-6) exit 1
    print r }')" || { log "DURATION_S*FPS = $duration*$fps is not a positive whole number of frames"; usage; }

keyint="${KEYINT:-$((2 * fps))}"
if ! [[ "$keyint" =~ ^[0-9]+$ ]] || [ "$keyint" -eq 0 ]; then
    log "bad KEYINT: $keyint"
    usage
fi

ext="${out##*.}"
ext="$(printf '%s' "$ext" | tr '[:upper:]' '[:lower:]')"
case "$ext" in
mp4) muxer=mp4 ;;
mov) muxer=mov ;;
mkv) muxer=matroska ;;
webm) muxer=webm ;;
*) log "unsupported extension .$ext (use .mp4, .mkv, .mov or .webm)"; usage ;;
esac

if [ "$muxer" = webm ]; then
    vcodec=(-c:v libvpx-vp9 -b:v 0 -crf 32 -deadline good -cpu-used 4 -row-mt 1
        -g "$keyint" -keyint_min "$keyint")
    acodec=(-c:a libopus -b:a 96k)
else
    vcodec=(-c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p
        -g "$keyint" -keyint_min "$keyint" -sc_threshold 0)
    acodec=(-c:a aac -b:a 128k)
fi
extra=()
if [ "$muxer" = mp4 ] || [ "$muxer" = mov ]; then
    extra=(-movflags +faststart)
fi

ensure_ffmpeg

inputs=(-f lavfi -i "testsrc2=size=${width}x${height}:rate=${fps}:duration=${duration}")
maps=(-map 0:v:0)
if [ "$audio" -eq 1 ]; then
    inputs+=(-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=${duration}")
    maps+=(-map 1:a:0 "${acodec[@]}" -ac 2 -ar 48000)
else
    maps+=(-an)
fi

# The sources stop after DURATION, so the video has exactly DURATION*FPS
# frames (checked below). -frames:v only goes on video-only clips: with an
# audio stream it makes ffmpeg close the whole output as soon as the last
# video frame is muxed, cutting the audio ~0.6 s short.
frame_limit=()
if [ "$audio" -eq 0 ]; then
    frame_limit=(-frames:v "$frames")
fi

dir="$(dirname "$out")"
mkdir -p "$dir"
tmp="$dir/.$(basename "$out").partial.$$"
trap 'rm -f "$tmp"' EXIT

ffmpeg -nostdin -hide_banner -loglevel error -y \
    "${inputs[@]}" \
    "${maps[@]}" \
    "${vcodec[@]}" -pix_fmt yuv420p "${frame_limit[@]}" \
    -t "$duration" \
    "${extra[@]}" -f "$muxer" "$tmp"

got="$(probe_frames "$tmp")"
if [ "$got" != "$frames" ]; then
    die "made $got frames instead of $frames"
fi
mv -f "$tmp" "$out"
trap - EXIT

if [ "$audio" -eq 1 ]; then
    what="with audio"
else
    what="no audio"
fi
log "made $out: ${width}x${height} ${fps} fps, $frames frames (${duration} s), keyframe every $keyint frames, $what"
