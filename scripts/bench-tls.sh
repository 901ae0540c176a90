#!/usr/bin/env bash
# What TLS costs: the same upload (random bytes, default 512 MiB) through a
# 2-node local cluster (release build), once in plaintext and once with
# TLS on every hop (client → master, master → backup node). The upload is
# acknowledged only once the backup node holds the bytes, so the time
# covers hashing, sending, the backup copy and the ack; the bytes are not
# a video, so the job then fails, which is not timed. Certificates come
# from a throwaway CA made with openssl.
#
#   scripts/bench-tls.sh          UPLOAD_MB=1024 RUNS=3 scripts/bench-tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# Every node started here belongs to one cluster: they share its join token.
VIDSHARD_JOIN_TOKEN="$(new_join_token)"
export VIDSHARD_JOIN_TOKEN
command -v openssl >/dev/null 2>&1 || apt_install openssl
cargo build --release --workspace --quiet
NODE=$PWD/target/release/vidshard-node
CLIENT=$PWD/target/release/vidshard
WORK="${BENCH_DIR:-$(mktemp -d /tmp/vidshard-tls.XXXXXX)}"
mkdir -p "$WORK"
cd "$WORK"
MB="${UPLOAD_MB:-512}"
RUNS="${RUNS:-2}"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

echo "== a CA and a node certificate for 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key -out ca.pem -days 2 -subj "/CN=vidshard-bench-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout node.key -out node.csr -subj "/CN=node" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >san.cnf
openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out node.pem -days 2 -extfile san.cnf 2>/dev/null

echo "== ${MB} MiB of random bytes"
head -c "$((MB * 1048576))" /dev/urandom >upload.bin

# upload_once MODE: prints the seconds one upload took.
upload_once() {
    local mode=$1 p1 p2 node_tls=() client_tls=()
    if [ "$mode" = tls ]; then
        node_tls=(--tls-cert node.pem --tls-key node.key --tls-ca ca.pem)
        client_tls=(--tls-ca ca.pem)
    fi
    rm -rf "n1-$mode" "n2-$mode"
    p1=$(free_port)
    "$NODE" --port "$p1" --data-dir "n1-$mode" "${node_tls[@]}" 2>"n1-$mode.log" &
    PIDS+=($!)
    local master_pid=$!
    wait_for_port 127.0.0.1 "$p1" 30 "$master_pid"
    p2=$(free_port)
    "$NODE" --port "$p2" --data-dir "n2-$mode" --role worker --master "127.0.0.1:$p1" \
        "${node_tls[@]}" 2>"n2-$mode.log" &
    PIDS+=($!)
    local worker_pid=$!
    # The backup node must have joined, or the upload is taken without a copy.
    for _ in $(seq 1 100); do
        if "$CLIENT" --node "127.0.0.1:$p1" "${client_tls[@]}" --json nodes 2>/dev/null \
            | grep -c '"alive": true' | grep -q '^2$'; then
            break
        fi
        sleep 0.1
    done
    local t0 t1
    t0=$(date +%s.%N)
    "$CLIENT" --node "127.0.0.1:$p1" "${client_tls[@]}" upload upload.bin \
        --width 320 --height 240 >/dev/null 2>"upload-$mode.log"
    t1=$(date +%s.%N)
    grep -q "stored a backup copy" "n2-$mode.log" || die "$mode: the backup node got no copy"
    stop_pid "$worker_pid"
    stop_pid "$master_pid"
    python3 -c "print(f'{$t1 - $t0:.2f}')"
}

printf '\n%-10s %s\n' "run" "upload of ${MB} MiB, acked with a backup copy (s)"
for run in $(seq 1 "$RUNS"); do
    plain=$(upload_once plain)
    tls=$(upload_once tls)
    printf '%-10s plaintext %6s   TLS %6s   TLS/plaintext %s\n' "$run" "$plain" "$tls" \
        "$(python3 -c "print(f'{$tls / $plain:.2f}')")"
done
rm -f upload.bin
echo "work dir: $WORK"
