#!/usr/bin/env python3
"""Peers that speak ONLY the original wire protocol (package `replication`),
written independently of vidshard in Python grpcio, to prove wire
compatibility in both directions:

    original_peers.py worker --port P --master HOST:PORT --work DIR [--jobs N]
        An original-protocol WORKER. Serves replication.WorkerService
        (ProcessShard, RequestShard) and replication.NodeService.GetNodeStats
        (the other NodeService RPCs answer UNIMPLEMENTED) on 127.0.0.1:P.
        Announces itself with MasterService.RegisterWorker at start and every
        2 s, encodes each shard with ffmpeg in a background thread and reports
        the outcome with MasterService.ReportWorkerShardStatus. Prints
        "original worker listening on 127.0.0.1:P" once serving; SIGTERM or
        SIGINT stops it cleanly (exit 0).

    original_peers.py master-test --worker HOST:PORT --port P --clip FILE
                                  [--node-data-dir D] [--scan-dir DIR ...]
        An original-protocol MASTER driving one of our nodes as its worker.
        Serves MasterService.ReportWorkerShardStatus on 127.0.0.1:P (other
        MasterService RPCs UNIMPLEMENTED), sends ProcessShard / RequestShard
        to --worker and checks the results with ffprobe. Prints one
        "PASS ..." or "FAIL ..." line per check on stdout, a summary line
        "master-test: N passed, M failed", and exits 1 when M > 0.
        --node-data-dir/--scan-dir: when the node accepts the shard id
        "../../evil.mp4", no file named evil.mp4 may exist under a scan dir
        outside the node's data dir.

It compiles proto/proto/replication.proto at run time with grpc_tools.protoc
into a temporary directory (like legacy_client.py), so no generated code lives
in the repository. Needs grpcio, grpcio-tools (scripts/lib.sh:
ensure_python_grpc), ffmpeg and ffprobe.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

GIB = 1024 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", GIB),
    ("grpc.max_send_message_length", GIB),
]
REGISTER_INTERVAL_S = 2.0
UNARY_TIMEOUT_S = 30.0

DEFAULT_PROTO = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "proto", "replication.proto"
)

STATUS_OK = "processed_successfully"
STATUS_FAILED = "failed_processing"


# --- shared ------------------------------------------------------------------


def die(message, code=2):
    print(f"original_peers: {message}", file=sys.stderr)
    sys.exit(code)


def load_protocol(proto_path):
    """Compile the .proto into a temp dir and import the generated modules."""
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from protoload import load_protocol as load

    return load(proto_path, die)


class Logger:
    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()

    def __call__(self, message):
        stamp = time.strftime("%H:%M:%S")
        with self.lock:
            print(f"{stamp} [{self.name}] {message}", file=sys.stderr, flush=True)


def rpc_error_text(err):
    code = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    return f"{code.name if code is not None else 'UNKNOWN'}: {details}"


# --- worker --------------------------------------------------------------------

SAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def unsafe_shard_id(shard_id):
    """Why a shard id is refused, or None when it may be used."""
    if not shard_id:
        return "empty shard_id"
    if "\0" in shard_id:
        return "shard_id contains NUL"
    if "/" in shard_id or "\\" in shard_id:
        return "shard_id contains a path separator"
    if ".." in shard_id:
        return "shard_id contains '..'"
    return None


def sanitised_name(shard_id):
    """A file name for a shard id that passed unsafe_shard_id: keeps the
    extension, replaces every other odd character with '_'."""
    name = SAFE_CHARS.sub("_", shard_id)
    if name.startswith("."):
        name = "_" + name[1:] if len(name) > 1 else "_"
    return name


class Shard:
    def __init__(self, shard_id, video_id, name):
        self.shard_id = shard_id
        self.video_id = video_id
        self.name = name
        self.state = "queued"  # queued, encoding, done, failed
        self.message = ""
        self.out_path = None


class OriginalWorker:
    def __init__(self, args, pb2, pb2_grpc, log):
        self.args = args
        self.pb2 = pb2
        self.log = log
        self.address = f"127.0.0.1:{args.port}"
        self.work = os.path.abspath(args.work)
        self.in_dir = os.path.join(self.work, "shards")
        self.out_dir = os.path.join(self.work, "encoded")
        os.makedirs(self.in_dir, exist_ok=True)
        os.makedirs(self.out_dir, exist_ok=True)
        self.lock = threading.Lock()
        self.shards = {}  # shard_id -> Shard
        self.names = {}  # file name -> shard_id
        self.procs = set()
        self.slots = threading.Semaphore(max(1, args.jobs))
        self.stopping = threading.Event()
        self.master_channel = grpc.insecure_channel(args.master, options=GRPC_OPTIONS)
        self.master = pb2_grpc.MasterServiceStub(self.master_channel)

    # -- naming

    def _file_name(self, shard_id):
        """Caller holds the lock. A sanitised basename unique to this id."""
        name = sanitised_name(shard_id)
        owner = self.names.get(name)
        if owner is not None and owner != shard_id:
            stem, ext = os.path.splitext(name)
            n = 2
            while f"{stem}-{n}{ext}" in self.names and self.names[f"{stem}-{n}{ext}"] != shard_id:
                n += 1
            name = f"{stem}-{n}{ext}"
        self.names[name] = shard_id
        return name

    # -- WorkerService

    def process_shard(self, request, context):
        pb2 = self.pb2
        shard_id = request.shard_id
        why = unsafe_shard_id(shard_id)
        if why is not None:
            self.log(f"ProcessShard {shard_id!r}: refused: {why}")
            return pb2.ProcessShardResponse(shard_id=shard_id, success=False, message=why)
        with self.lock:
            existing = self.shards.get(shard_id)
            if existing is not None and existing.state in ("queued", "encoding"):
                message = f"shard {shard_id} is already being encoded here"
                self.log(f"ProcessShard {shard_id!r}: refused: {message}")
                return pb2.ProcessShardResponse(shard_id=shard_id, success=False, message=message)
            name = existing.name if existing is not None else self._file_name(shard_id)
            shard = Shard(shard_id, request.video_id, name)
            self.shards[shard_id] = shard
        in_path = os.path.join(self.in_dir, name)
        try:
            partial = f"{in_path}.partial"
            with open(partial, "wb") as f:
                f.write(request.shard_data)
            os.replace(partial, in_path)
        except OSError as err:
            with self.lock:
                shard.state = "failed"
                shard.message = f"cannot save the shard: {err}"
            self.log(f"ProcessShard {shard_id!r}: {shard.message}")
            return pb2.ProcessShardResponse(shard_id=shard_id, success=False, message=shard.message)
        width, height = request.target_width, request.target_height
        if request.upscale_width > 0 and request.upscale_height > 0:
            width, height = request.upscale_width, request.upscale_height
        self.log(
            f"ProcessShard {shard_id!r} (video {request.video_id!r}, shard "
            f"{request.shard_index + 1}/{request.total_shards}, {len(request.shard_data)} bytes, "
            f"-> {width}x{height}): saved as {in_path}"
        )
        threading.Thread(
            target=self._encode, args=(shard, in_path, width, height), daemon=True
        ).start()
        return pb2.ProcessShardResponse(
            shard_id=shard_id, success=True, message=f"accepted; encoding to {width}x{height}"
        )

    def request_shard(self, request, context):
        pb2 = self.pb2
        shard_id = request.shard_id
        with self.lock:
            shard = self.shards.get(shard_id)
            state = shard.state if shard is not None else None
            message = shard.message if shard is not None else ""
            out_path = shard.out_path if shard is not None else None
        if shard is None:
            message = f"unknown shard {shard_id}"
        elif state == "done":
            try:
                with open(out_path, "rb") as f:
                    data = f.read()
            except OSError as err:
                message = f"encoded shard {shard_id} is unreadable: {err}"
            else:
                self.log(f"RequestShard {shard_id!r}: sending {len(data)} bytes")
                return pb2.RequestShardResponse(
                    shard_id=shard_id, shard_data=data, success=True, message="ok"
                )
        elif state == "failed":
            message = f"shard {shard_id} failed: {message}"
        else:
            message = f"shard {shard_id} is still {state}"
        self.log(f"RequestShard {shard_id!r}: {message}")
        return pb2.RequestShardResponse(shard_id=shard_id, success=False, message=message)

    # -- NodeService.GetNodeStats

    def get_node_stats(self, request, context):
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
        cpu = min(100.0, 100.0 * load / (os.cpu_count() or 1))
        memory = 0.0
        try:
            info = {}
            with open("/proc/meminfo") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    info[key] = int(rest.split()[0])
            if info.get("MemTotal"):
                memory = 100.0 * (1.0 - info.get("MemAvailable", 0) / info["MemTotal"])
        except (OSError, ValueError, IndexError):
            pass
        disk = shutil.disk_usage(self.work)
        with self.lock:
            active = sum(1 for s in self.shards.values() if s.state in ("queued", "encoding"))
        return self.pb2.NodeStatsResponse(
            node_id=f"original-worker-{self.args.port}",
            node_address=self.address,
            is_master=False,
            current_master_address=self.args.master,
            cpu_utilization=cpu,
            memory_utilization=memory,
            disk_space_free_shards=disk.free,
            disk_space_total_shards=disk.total,
            disk_space_free_masterdata=disk.free,
            disk_space_total_masterdata=disk.total,
            active_tasks=active,
            known_nodes_count=1,
            election_in_progress=False,
            current_term=0,
        )

    # -- encoding

    def _encode(self, shard, in_path, width, height):
        with self.slots:
            if self.stopping.is_set():
                return
            with self.lock:
                shard.state = "encoding"
            out_path = os.path.join(self.out_dir, shard.name)
            partial = os.path.join(self.out_dir, f".partial-{shard.name}")
            cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", in_path]
            cmd += ["-map", "0:v:0", "-map", "0:a?"]
            if width > 0 and height > 0:
                cmd += ["-vf", f"scale={width}:{height}"]
            cmd += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac"]
            # The partial file keeps the shard id's extension, which picks
            # the container; an id without one gets mp4.
            if not os.path.splitext(shard.name)[1]:
                cmd += ["-f", "mp4"]
            cmd.append(partial)
            started = time.monotonic()
            self.log(f"encoding {shard.shard_id!r}: {' '.join(cmd)}")
            try:
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
            except OSError as err:
                ok, message = False, f"cannot run ffmpeg: {err}"
            else:
                with self.lock:
                    self.procs.add(proc)
                _, err_out = proc.communicate()
                with self.lock:
                    self.procs.discard(proc)
                if self.stopping.is_set():
                    return
                tail = err_out.decode("utf-8", "replace").strip().splitlines()[-3:]
                if proc.returncode == 0 and os.path.isfile(partial) and os.path.getsize(partial) > 0:
                    os.replace(partial, out_path)
                    ok, message = True, f"encoded in {time.monotonic() - started:.1f} s"
                else:
                    ok = False
                    message = f"ffmpeg exit {proc.returncode}: {' | '.join(tail)}"
            if not ok and os.path.exists(partial):
                os.unlink(partial)
            with self.lock:
                shard.state = "done" if ok else "failed"
                shard.message = message
                shard.out_path = out_path if ok else None
            self.log(f"shard {shard.shard_id!r}: {shard.state}: {message}")
        self._report(shard, STATUS_OK if ok else STATUS_FAILED)

    def _report(self, shard, status):
        request = self.pb2.ReportWorkerShardStatusRequest(
            video_id=shard.video_id,
            shard_id=shard.shard_id,
            worker_address=self.address,
            status=status,
        )
        for attempt in range(1, 6):
            if self.stopping.is_set():
                return
            try:
                reply = self.master.ReportWorkerShardStatus(request, timeout=UNARY_TIMEOUT_S)
            except grpc.RpcError as err:
                self.log(
                    f"ReportWorkerShardStatus {shard.shard_id!r} {status} (attempt {attempt}): "
                    f"{rpc_error_text(err)}"
                )
                self.stopping.wait(1.0)
                continue
            self.log(
                f"ReportWorkerShardStatus {shard.shard_id!r} {status}: "
                f"success={reply.success} message={reply.message!r}"
            )
            return

    # -- announcing

    def register_loop(self):
        last = None
        repeats = 0
        while not self.stopping.is_set():
            request = self.pb2.RegisterWorkerRequest(worker_address=self.address)
            try:
                reply = self.master.RegisterWorker(request, timeout=5.0)
                text = f"success={reply.success} message={reply.message!r}"
            except grpc.RpcError as err:
                text = f"error {rpc_error_text(err)}"
            if text != last:
                if repeats:
                    self.log(f"RegisterWorker: (same reply {repeats} more times)")
                self.log(f"RegisterWorker {self.address} -> {self.args.master}: {text}")
                last, repeats = text, 0
            else:
                repeats += 1
            self.stopping.wait(REGISTER_INTERVAL_S)

    def stop(self):
        self.stopping.set()
        with self.lock:
            procs = list(self.procs)
        for proc in procs:
            try:
                proc.kill()
            except OSError:
                pass
        self.master_channel.close()


def run_worker(args):
    pb2, pb2_grpc = load_protocol(args.proto)
    log = Logger(f"original-worker:{args.port}")
    worker = OriginalWorker(args, pb2, pb2_grpc, log)

    class WorkerServicer(pb2_grpc.WorkerServiceServicer):
        def ProcessShard(self, request, context):
            return worker.process_shard(request, context)

        def RequestShard(self, request, context):
            return worker.request_shard(request, context)

    class NodeServicer(pb2_grpc.NodeServiceServicer):
        # Every other NodeService RPC keeps the generated UNIMPLEMENTED answer.
        def GetNodeStats(self, request, context):
            return worker.get_node_stats(request, context)

        def AnnounceMaster(self, request, context):
            # As the original did: note who the master is now, and in which term.
            print(
                f"announcement: master {request.master_address} "
                f"({request.node_id_of_master}) term {request.term}",
                flush=True,
            )
            return pb2.MasterAnnouncementResponse(status="acknowledged", node_id=worker.address)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=GRPC_OPTIONS)
    pb2_grpc.add_WorkerServiceServicer_to_server(WorkerServicer(), server)
    pb2_grpc.add_NodeServiceServicer_to_server(NodeServicer(), server)
    try:
        bound = server.add_insecure_port(f"127.0.0.1:{args.port}")
    except RuntimeError as err:
        die(f"cannot listen on 127.0.0.1:{args.port}: {err}", 1)
    if bound == 0:
        die(f"cannot listen on 127.0.0.1:{args.port}", 1)

    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start()
    print(f"original worker listening on {worker.address}", flush=True)
    log(f"work dir {worker.work}, master {args.master}, {args.jobs} encode slot(s)")
    announcer = threading.Thread(target=worker.register_loop, daemon=True)
    announcer.start()
    while not stop.wait(0.5):
        pass
    worker.stop()
    server.stop(grace=2).wait()
    announcer.join(timeout=5)
    log("stopped")
    return 0


# --- media checks ---------------------------------------------------------------


def ffprobe(*args):
    out = subprocess.run(
        ["ffprobe", "-v", "error", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout


def first_line_fields(text):
    for line in text.splitlines():
        line = line.strip()
        if line:
            return [f for f in line.split(",") if f != ""]
    return []


def probe_video(path):
    """(codec, width, height) of the first video stream, or None."""
    fields = first_line_fields(
        ffprobe("-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height",
                "-of", "csv=p=0", path)
    )
    if len(fields) < 3:
        return None
    try:
        return fields[0], int(fields[1]), int(fields[2])
    except ValueError:
        return None


def probe_frames(path):
    fields = first_line_fields(
        ffprobe("-count_packets", "-select_streams", "v:0", "-show_entries",
                "stream=nb_read_packets", "-of", "csv=p=0", path)
    )
    try:
        return int(fields[0])
    except (IndexError, ValueError):
        return None


def probe_audio(path):
    """(codec, duration_seconds) of the first audio stream, or None. The
    duration falls back to decoded samples / rate when the container has no
    stream duration (like scripts/lib.sh probe_audio_duration)."""
    doc = ffprobe("-select_streams", "a:0", "-show_entries",
                  "stream=codec_name,duration,sample_rate", "-of", "json", path)
    try:
        streams = json.loads(doc).get("streams", [])
    except ValueError:
        return None
    if not streams:
        return None
    stream = streams[0]
    codec = stream.get("codec_name", "")
    try:
        return codec, float(stream["duration"])
    except (KeyError, ValueError):
        pass
    try:
        rate = int(stream.get("sample_rate", "0"))
    except ValueError:
        rate = 0
    if rate <= 0:
        return codec, None
    samples = 0
    for line in ffprobe("-select_streams", "a:0", "-show_entries", "frame=nb_samples",
                        "-of", "csv=p=0", path).splitlines():
        line = line.strip().strip(",")
        if line.isdigit():
            samples += int(line)
    return codec, samples / rate


# --- master-test -------------------------------------------------------------------


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        self.passed += 1
        print(f"PASS {name}", flush=True)

    def fail(self, name, detail):
        self.failed += 1
        print(f"FAIL {name} ({detail})", flush=True)

    def check(self, cond, name, detail):
        if cond:
            self.ok(name)
        else:
            self.fail(name, detail)
        return cond


class Reports:
    """ReportWorkerShardStatus requests received by the test master."""

    def __init__(self):
        self.cond = threading.Condition()
        self.items = []

    def add(self, request):
        with self.cond:
            self.items.append(request)
            self.cond.notify_all()

    def wait_for(self, match, timeout):
        """The first report for which match(report) is true, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.items:
                    if match(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def all(self):
        with self.cond:
            return list(self.items)


def describe_report(r):
    return (
        f"video_id={r.video_id!r} shard_id={r.shard_id!r} "
        f"worker_address={r.worker_address!r} status={r.status!r}"
    )


def find_files_named(name, roots, exclude):
    """Paths of files called `name` under the roots, outside `exclude`."""
    exclude = os.path.realpath(exclude) if exclude else None
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            real = os.path.realpath(dirpath)
            if exclude and (real == exclude or real.startswith(exclude + os.sep)):
                dirnames[:] = []
                continue
            if name in filenames:
                found.append(os.path.join(dirpath, name))
    return found


def run_master_test(args):
    pb2, pb2_grpc = load_protocol(args.proto)
    log = Logger(f"original-master:{args.port}")
    checks = Checks()
    reports = Reports()

    if not os.path.isfile(args.clip):
        die(f"not a file: {args.clip}")
    with open(args.clip, "rb") as f:
        clip_bytes = f.read()
    in_frames = probe_frames(args.clip)
    in_audio = probe_audio(args.clip)
    log(f"clip {args.clip}: {len(clip_bytes)} bytes, {in_frames} frames, audio {in_audio}")

    class MasterServicer(pb2_grpc.MasterServiceServicer):
        # Every other MasterService RPC keeps the generated UNIMPLEMENTED answer.
        def ReportWorkerShardStatus(self, request, context):
            log(f"ReportWorkerShardStatus from {context.peer()}: {describe_report(request)}")
            reports.add(request)
            return pb2.ReportWorkerShardStatusResponse(success=True, message="recorded")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=GRPC_OPTIONS)
    pb2_grpc.add_MasterServiceServicer_to_server(MasterServicer(), server)
    try:
        bound = server.add_insecure_port(f"127.0.0.1:{args.port}")
    except RuntimeError as err:
        die(f"cannot listen on 127.0.0.1:{args.port}: {err}", 1)
    if bound == 0:
        die(f"cannot listen on 127.0.0.1:{args.port}", 1)
    server.start()
    log(f"original master listening on 127.0.0.1:{args.port}; worker under test {args.worker}")

    channel = grpc.insecure_channel(args.worker, options=GRPC_OPTIONS)
    worker = pb2_grpc.WorkerServiceStub(channel)
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
    except grpc.FutureTimeoutError:
        checks.fail(f"connect to the worker {args.worker}", "not reachable within 30 s")
        return finish_master_test(checks, server, channel)

    def process(video_id, shard_id, data, index=0, total=1, original="vid1.mp4"):
        request = pb2.DistributeShardRequest(
            video_id=video_id,
            shard_id=shard_id,
            shard_data=data,
            shard_index=index,
            total_shards=total,
            target_width=160,
            target_height=120,
            original_filename=original,
        )
        try:
            reply = worker.ProcessShard(request, timeout=UNARY_TIMEOUT_S)
        except grpc.RpcError as err:
            log(f"ProcessShard {shard_id!r}: {rpc_error_text(err)}")
            return None, rpc_error_text(err)
        log(f"ProcessShard {shard_id!r}: success={reply.success} message={reply.message!r} "
            f"shard_id={reply.shard_id!r}")
        return reply, None

    def request_shard(shard_id):
        try:
            reply = worker.RequestShard(pb2.RequestShardRequest(shard_id=shard_id),
                                        timeout=UNARY_TIMEOUT_S)
        except grpc.RpcError as err:
            log(f"RequestShard {shard_id!r}: {rpc_error_text(err)}")
            return None, rpc_error_text(err)
        log(f"RequestShard {shard_id!r}: success={reply.success} {len(reply.shard_data)} bytes "
            f"message={reply.message!r}")
        return reply, None

    # --- the real shard --------------------------------------------------------
    shard_id = "vid1_shard_0.mp4"
    reply, err = process("vid1", shard_id, clip_bytes)
    accepted = reply is not None and reply.success
    checks.check(
        accepted,
        f"ProcessShard {shard_id} ({len(clip_bytes)} bytes, 160x120) is accepted",
        err or (f"success={reply.success} message={reply.message!r}" if reply else "no reply"),
    )
    if accepted:
        report = reports.wait_for(lambda r: r.shard_id == shard_id, args.timeout)
        if report is None:
            checks.fail(
                f"ReportWorkerShardStatus for {shard_id} arrives within {args.timeout:.0f} s",
                f"none; reports so far: {[describe_report(r) for r in reports.all()]}",
            )
        else:
            checks.check(
                report.status == STATUS_OK
                and report.worker_address == args.worker
                and report.video_id == "vid1",
                f"report for {shard_id}: {STATUS_OK} from {args.worker} (video vid1)",
                describe_report(report),
            )
            reply, err = request_shard(shard_id)
            got = reply is not None and reply.success and len(reply.shard_data) > 0
            checks.check(
                got,
                f"RequestShard {shard_id} returns the encoded shard",
                err or f"success={reply.success} {len(reply.shard_data)} bytes "
                f"message={reply.message!r}",
            )
            if got:
                check_output(checks, reply.shard_data, in_frames, in_audio, args.keep)

    # --- path traversal ----------------------------------------------------------
    evil = "../../evil.mp4"
    reply, err = process("vid-evil", evil, clip_bytes)
    if reply is None:
        checks.fail(f"ProcessShard {evil!r} is answered", err)
    elif not reply.success:
        checks.ok(f"ProcessShard {evil!r} refused (success=false: {reply.message!r})")
    else:
        # Accepted: the node must have sanitised the id. Let it finish (it
        # reports either way) before looking for stray files.
        report = reports.wait_for(lambda r: r.video_id == "vid-evil", 60)
        stray = []
        if args.scan_dir:
            stray = find_files_named("evil.mp4", args.scan_dir, args.node_data_dir)
        detail = (
            f"reply shard_id={reply.shard_id!r}, "
            f"report {describe_report(report) if report else 'none within 60 s'}"
        )
        checks.check(
            not stray,
            f"ProcessShard {evil!r} accepted but sanitised: no evil.mp4 outside the node's "
            f"data dir ({detail}; scanned {args.scan_dir or 'nothing'})",
            f"found {stray}",
        )

    # --- garbage data --------------------------------------------------------------
    junk_id = "vid-junk_shard_0.mp4"
    junk = (b"this is not a video, just some text. " * 40)[:1000]
    reply, err = process("vid-junk", junk_id, junk, original="junk.mp4")
    if reply is None:
        checks.fail(f"ProcessShard {junk_id} with 1000 bytes of text is answered", err)
    elif not reply.success:
        checks.ok(f"ProcessShard {junk_id} with 1000 bytes of text refused up front "
                  f"({reply.message!r})")
    else:
        report = reports.wait_for(lambda r: r.shard_id == junk_id, 60)
        checks.check(
            report is not None and report.status == STATUS_FAILED,
            f"ProcessShard {junk_id} with 1000 bytes of text accepted, then reported "
            f"{STATUS_FAILED}",
            describe_report(report) if report else "no report within 60 s",
        )
        if report is not None:
            reply, err = request_shard(junk_id)
            checks.check(
                reply is not None and not reply.success,
                f"RequestShard {junk_id} after the failure says success=false",
                err or f"success={reply.success} {len(reply.shard_data)} bytes",
            )

    # --- unknown shard --------------------------------------------------------------
    reply, err = request_shard("no-such-shard.mp4")
    checks.check(
        reply is not None and not reply.success and not reply.shard_data,
        f"RequestShard no-such-shard.mp4 says success=false"
        + (f" ({reply.message!r})" if reply is not None else ""),
        err or f"success={reply.success} {len(reply.shard_data)} bytes",
    )

    return finish_master_test(checks, server, channel)


def check_output(checks, data, in_frames, in_audio, keep):
    with tempfile.NamedTemporaryFile(prefix="original-master-", suffix=".mp4", delete=False) as f:
        f.write(data)
        path = f.name
    try:
        video = probe_video(path)
        checks.check(video == ("h264", 160, 120), "encoded shard is h264 160x120", f"got {video}")
        frames = probe_frames(path)
        checks.check(
            frames is not None and frames == in_frames,
            f"encoded shard has the input's {in_frames} frames",
            f"got {frames}",
        )
        audio = probe_audio(path)
        want = in_audio[1] if in_audio else None
        got_ok = (
            audio is not None
            and audio[0] == "aac"
            and audio[1] is not None
            and want is not None
            and abs(audio[1] - want) <= 0.05
        )
        checks.check(
            got_ok,
            f"encoded shard has aac audio lasting {want} s +- 0.05 s",
            f"got {audio}",
        )
    finally:
        if keep:
            print(f"kept the encoded shard at {path}", file=sys.stderr)
        else:
            os.unlink(path)


def finish_master_test(checks, server, channel):
    channel.close()
    server.stop(grace=1).wait()
    print(f"master-test: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


# --- main ----------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--proto", default=DEFAULT_PROTO, help="path of replication.proto")
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="an original-protocol worker")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--master", required=True, metavar="HOST:PORT")
    w.add_argument("--work", required=True, metavar="DIR", help="where shards are kept")
    w.add_argument("--jobs", type=int, default=1, help="shards encoded at once (default 1)")

    m = sub.add_parser("master-test", help="drive a node as an original master would")
    m.add_argument("--worker", required=True, metavar="HOST:PORT", help="the node under test")
    m.add_argument("--port", type=int, required=True, help="port of this test master")
    m.add_argument("--clip", required=True, help="a short mp4 clip with audio")
    m.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for the shard's report (default 120)")
    m.add_argument("--node-data-dir", default=None,
                   help="the node's data dir (excluded from the evil.mp4 scan)")
    m.add_argument("--scan-dir", action="append", default=[],
                   help="directory where no evil.mp4 may appear outside --node-data-dir")
    m.add_argument("--keep", action="store_true", help="keep the retrieved shard")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if args.command == "worker":
        return run_worker(args)
    return run_master_test(args)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
