# shellcheck shell=bash
# Shared helpers for the vidshard scripts. Source it, do not run it:
#
#   . "$(dirname "$0")/lib.sh"        (from scripts/)
#
# Every helper is safe under `set -euo pipefail`. Diagnostics go to stderr;
# helpers that produce a value (ensure_python_grpc, free_port) print only
# that value on stdout, so `x="$(helper)"` works.

# Absolute path of the repository root (the parent of scripts/).
VIDSHARD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIDSHARD_ROOT

# log MESSAGE...: a diagnostic line on stderr.
log() {
    printf '%s\n' "$*" >&2
}

# die MESSAGE...: print an error on stderr and exit 1.
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# section TITLE: a visible header between the steps of a script.
section() {
    printf '\n==> %s\n' "$*" >&2
}

# as_root CMD...: run CMD as root (directly, or with sudo when available).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (no sudo available)"
    fi
}

# apt_install PACKAGE...: install Debian packages non-interactively.
apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || die "cannot install $* automatically: apt-get not found; install it by hand"
    log "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2
}

# ensure_ffmpeg: make sure ffmpeg and ffprobe are on PATH, installing the
# Debian package when either is missing.
ensure_ffmpeg() {
    if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
        return 0
    fi
    apt_install ffmpeg
    if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
        die "ffmpeg/ffprobe still missing after installing the ffmpeg package"
    fi
}

# ensure_tmux: the console's end-to-end test drives it in tmux.
ensure_tmux() {
    command -v tmux >/dev/null 2>&1 && return 0
    apt_install tmux
    command -v tmux >/dev/null 2>&1 || die "tmux still missing after installing the tmux package"
}

# ensure_chromium: node/tests/browser.rs plays ladder packages in a
# headless Chromium (hls.js and dash.js on MSE, as a viewer's browser
# does). Debian's chromium-headless-shell is the small one made for this;
# the full chromium (run with --headless) where that package is missing.
ensure_chromium() {
    command -v chromium-headless-shell >/dev/null 2>&1 && return 0
    command -v chromium >/dev/null 2>&1 && return 0
    if ! apt_install chromium-headless-shell; then
        log "chromium-headless-shell did not install; trying chromium"
        apt_install chromium
    fi
    command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1 \
        || die "neither chromium-headless-shell nor chromium on PATH after installing them"
}

# ensure_python3: make sure a python3 interpreter exists (Debian package
# otherwise).
ensure_python3() {
    command -v python3 >/dev/null 2>&1 && return 0
    apt_install python3 python3-venv
    command -v python3 >/dev/null 2>&1 || die "python3 still missing after installing it"
}

# ensure_python_grpc: a virtualenv with grpcio and grpcio-tools, at
# ${VIDSHARD_VENV:-$HOME/.cache/vidshard/venv}. Creates it and installs the
# packages with pip only when they are not importable there yet. Prints the
# venv's python path on stdout.
ensure_python_grpc() {
    local venv="${VIDSHARD_VENV:-$HOME/.cache/vidshard/venv}"
    local py="$venv/bin/python"
    if [ -x "$py" ] && "$py" -c 'import grpc, grpc_tools.protoc' >/dev/null 2>&1; then
        printf '%s\n' "$py"
        return 0
    fi
    ensure_python3
    if [ ! -x "$py" ]; then
        log "creating python venv at $venv"
        mkdir -p "$(dirname "$venv")"
        if ! python3 -m venv "$venv" >&2; then
            # Debian's python3 ships without ensurepip until python3-venv is in.
            rm -rf "$venv"
            apt_install python3-venv
            python3 -m venv "$venv" >&2 || die "cannot create a python venv at $venv"
        fi
    fi
    log "installing grpcio grpcio-tools into $venv"
    "$py" -m pip install --quiet --disable-pip-version-check grpcio grpcio-tools >&2 \
        || die "pip install grpcio grpcio-tools failed"
    "$py" -c 'import grpc, grpc_tools.protoc' >/dev/null 2>&1 \
        || die "grpc modules still not importable in $venv"
    printf '%s\n' "$py"
}

# free_port: a TCP port on 127.0.0.1 that is free right now (the kernel
# picks it: bind to port 0). Another process could take it before we use
# it, but in practice the kernel does not hand it out again at once.
# new_join_token: a random join token, for scripts that start every node of
# a cluster themselves (give it to each with VIDSHARD_JOIN_TOKEN).
new_join_token() {
    printf 'join-%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
}

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
    elif command -v perl >/dev/null 2>&1; then
        # perl-base is Essential on Debian, so this works on a bare system.
        perl -MIO::Socket::INET -e '
            my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
                                          Proto => "tcp", Listen => 1) or die "bind: $!\n";
            print $s->sockport(), "\n";'
    else
        die "free_port needs python3 or perl"
    fi
}

# port_open HOST PORT: true when a TCP connection to HOST:PORT succeeds.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_for_port HOST PORT TIMEOUT_S [PID]: poll until HOST:PORT accepts TCP
# connections. Fails after TIMEOUT_S seconds, or at once when PID is given
# and that process has exited (e.g. the node failed to start).
wait_for_port() {
    local host="$1" port="$2" timeout="$3" pid="${4:-}"
    local deadline=$((SECONDS + timeout))
    while true; do
        if port_open "$host" "$port"; then
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            log "process $pid exited before $host:$port opened"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "timed out after ${timeout}s waiting for $host:$port"
            return 1
        fi
        sleep 0.1
    done
}

# stop_pid PID [GRACE_S=10]: SIGTERM a process we started, wait up to
# GRACE_S seconds for it to exit, then SIGKILL it. Never fails.
stop_pid() {
    local pid="$1" grace="${2:-10}"
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "process $pid did not stop within ${grace}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# probe_frames FILE: number of video packets (= frames) of the first video
# stream.
probe_frames() {
    ffprobe -v error -count_packets -select_streams v:0 \
        -show_entries stream=nb_read_packets -of csv=p=0 "$1" | head -n1 | tr -d '[:space:],'
}

# probe_video FILE: "codec,width,height" of the first video stream.
probe_video() {
    ffprobe -v error -select_streams v:0 \
        -show_entries stream=codec_name,width,height -of csv=p=0 "$1" | head -n1 | tr -d '[:space:]'
}

# probe_audio_duration FILE: duration in seconds of the first audio stream
# (empty when there is no audio stream). When the container records no
# stream duration (Matroska/WebM) it is the decoded sample count divided by
# the sample rate (for AAC in Matroska that includes the ~21 ms of encoder
# priming, which Matroska does not record).
probe_audio_duration() {
    local d rate
    d="$(ffprobe -v error -select_streams a:0 -show_entries stream=duration \
        -of csv=p=0 "$1" | head -n1 | tr -d '[:space:],')"
    if [ -n "$d" ] && [ "$d" != "N/A" ]; then
        printf '%s\n' "$d"
        return 0
    fi
    rate="$(ffprobe -v error -select_streams a:0 -show_entries stream=sample_rate \
        -of csv=p=0 "$1" | head -n1 | tr -d '[:space:],')"
    if [ -z "$rate" ] || [ "$rate" = "N/A" ] || [ "$rate" = 0 ]; then
        printf '\n'
        return 0
    fi
    ffprobe -v error -select_streams a:0 -show_entries frame=nb_samples -of csv=p=0 "$1" \
        | awk -F, -v r="$rate" '{ n += $1 } END { printf "%.6f\n", n / r }'
}

# Test verdicts for the shell end-to-end tests: they count into the
# caller's `passed` and `failed` variables.
pass() {
    passed=$((passed + 1))
    printf 'PASS %s\n' "$*"
}

fail() {
    failed=$((failed + 1))
    printf 'FAIL %s\n' "$*"
}

# verdict STATUS NAME DETAIL: PASS when STATUS is 0, else FAIL with DETAIL.
# Use as:  if CONDITION; then ok=0; else ok=1; fi; verdict $ok NAME DETAIL
verdict() {
    if [ "$1" -eq 0 ]; then
        pass "$2"
    else
        fail "$2 ($3)"
    fi
}
