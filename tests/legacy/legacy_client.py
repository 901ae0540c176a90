#!/usr/bin/env python3
"""A client of the ORIGINAL wire protocol (package `replication`), written
the way the original Python client talks to a master, to check that vidshard
nodes stay compatible with it.

It compiles proto/proto/replication.proto at run time with grpc_tools.protoc
into a temporary directory, so no generated code lives in the repository.
Needs grpcio and grpcio-tools (scripts/lib.sh: ensure_python_grpc).

    legacy_client.py --node HOST:PORT upload FILE --width W --height H
                     [--format F] [--upscale-width N --upscale-height N]
                     [--video-id ID]
    legacy_client.py --node HOST:PORT wait ID [--timeout S]
    legacy_client.py --node HOST:PORT retrieve ID OUT
    legacy_client.py --node HOST:PORT status ID
    legacy_client.py --node HOST:PORT master
    legacy_client.py --node HOST:PORT stats

Every command prints one JSON document on stdout. Exit codes: 0 success,
1 the node answered with a failure (upload refused, job failed, empty or
oversized retrieve chunk), 2 usage error or wait timeout, 3 gRPC error
(the JSON then has "code" and "details").
"""

import argparse
import json
import os
import sys
import time

import grpc

# The original client's numbers.
CHUNK_SIZE = 1024 * 1024  # upload chunk size, and the largest retrieve chunk
MAX_RECEIVE = CHUNK_SIZE + 1024  # grpc.max_receive_message_length = 1049600
POLL_INTERVAL_S = 0.5
UNARY_TIMEOUT_S = 30.0

# Status strings the original client treats as final failures.
FAILED_STATUSES = frozenset(
    {
        "failed_segmentation",
        "failed_distribution",
        "processing_failed",
        "concatenation_failed",
        "concatenation_prerequisites_failed",
        "not_found",
        "error",
    }
)

DEFAULT_PROTO = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "proto", "replication.proto"
)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_GRPC = 3


def load_protocol(proto_path):
    """Compile the .proto into a temp dir and import the generated modules."""
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from protoload import load_protocol as load

    return load(proto_path, fail_usage)


def emit(document):
    print(json.dumps(document, sort_keys=False))
    sys.stdout.flush()


def fail_usage(message):
    print(f"legacy_client: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def grpc_error(err, **extra):
    """Print a gRPC error as JSON and exit 3."""
    code = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    document = {"code": code.name if code is not None else "UNKNOWN", "details": details or ""}
    document.update(extra)
    emit(document)
    sys.exit(EXIT_GRPC)


def _is_repeated(field):
    # protobuf >= 6 has FieldDescriptor.is_repeated; 7 dropped .label.
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        repeated = field.label == field.LABEL_REPEATED
    return bool(repeated)


def message_dict(msg):
    """Every field of a flat message, defaults included, by proto name."""
    out = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if _is_repeated(field):
            value = [message_dict(v) if hasattr(v, "DESCRIPTOR") else v for v in value]
        elif field.type == field.TYPE_MESSAGE:
            value = message_dict(value) if msg.HasField(field.name) else None
        elif field.type == field.TYPE_FLOAT:
            value = round(value, 6)
        out[field.name] = value
    return out


class Client:
    def __init__(self, node, proto):
        self.pb2, pb2_grpc = load_protocol(proto)
        # One channel for everything, capped like the original client's.
        self.channel = grpc.insecure_channel(
            node, options=[("grpc.max_receive_message_length", MAX_RECEIVE)]
        )
        self.master = pb2_grpc.MasterServiceStub(self.channel)
        self.node = pb2_grpc.NodeServiceStub(self.channel)

    # --- upload ---------------------------------------------------------

    def chunks(self, path, video_id, args):
        pb2 = self.pb2
        first = True
        with open(path, "rb") as f:
            while True:
                data = f.read(CHUNK_SIZE)
                if not data and not first:
                    return
                if first:
                    yield pb2.UploadVideoChunk(
                        video_id=video_id,
                        data_chunk=data,
                        is_first_chunk=True,
                        target_width=args.width,
                        target_height=args.height,
                        upscale_width=args.upscale_width,
                        upscale_height=args.upscale_height,
                        output_format=args.format,
                        original_filename=os.path.basename(path),
                    )
                    first = False
                else:
                    yield self.pb2.UploadVideoChunk(video_id=video_id, data_chunk=data)
                if len(data) < CHUNK_SIZE:
                    return

    def upload(self, args):
        if not os.path.isfile(args.file):
            fail_usage(f"not a file: {args.file}")
        # Like the original: the file's base name is the requested id.
        video_id = os.path.basename(args.file) if args.video_id is None else args.video_id
        try:
            reply = self.master.UploadVideo(self.chunks(args.file, video_id, args))
        except grpc.RpcError as err:
            grpc_error(err, requested_video_id=video_id)
        emit({"video_id": reply.video_id, "success": reply.success, "message": reply.message})
        return 0 if reply.success else EXIT_FAILED

    # --- status / wait --------------------------------------------------

    def get_status(self, video_id):
        return self.master.GetVideoStatus(
            self.pb2.VideoStatusRequest(video_id=video_id), timeout=UNARY_TIMEOUT_S
        )

    def status(self, args):
        try:
            reply = self.get_status(args.id)
        except grpc.RpcError as err:
            grpc_error(err, video_id=args.id)
        emit({"video_id": reply.video_id, "status": reply.status, "message": reply.message})
        return 0

    def wait(self, args):
        deadline = time.monotonic() + args.timeout
        last = None
        while True:
            try:
                reply = self.get_status(args.id)
            except grpc.RpcError as err:
                # Ride out a node that is briefly unreachable; anything else is final.
                if err.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() >= deadline:
                    grpc_error(err, video_id=args.id)
            else:
                document = {
                    "video_id": reply.video_id,
                    "status": reply.status,
                    "message": reply.message,
                }
                if (reply.status, reply.message) != last:
                    last = (reply.status, reply.message)
                    print(f"[wait] {reply.status}: {reply.message}", file=sys.stderr)
                if reply.status == "completed":
                    emit(document)
                    return 0
                if reply.status in FAILED_STATUSES:
                    emit(document)
                    return EXIT_FAILED
                if time.monotonic() >= deadline:
                    document["timeout"] = True
                    emit(document)
                    return EXIT_USAGE
            time.sleep(POLL_INTERVAL_S)

    # --- retrieve -------------------------------------------------------

    def retrieve(self, args):
        out = os.path.abspath(args.out)
        tmp = f"{out}.partial.{os.getpid()}"
        total = chunks = largest = 0
        try:
            with open(tmp, "wb") as f:
                stream = self.master.RetrieveVideo(self.pb2.RetrieveVideoRequest(video_id=args.id))
                for chunk in stream:
                    size = len(chunk.data_chunk)
                    if size > CHUNK_SIZE:
                        stream.cancel()
                        emit(
                            {
                                "video_id": args.id,
                                "error": f"chunk {chunks} has {size} bytes, more than {CHUNK_SIZE}",
                            }
                        )
                        return EXIT_FAILED
                    f.write(chunk.data_chunk)
                    chunks += 1
                    total += size
                    largest = max(largest, size)
            if chunks == 0 or total == 0:
                # The contract: an unknown/unready video is a gRPC error, never
                # an empty success.
                emit({"video_id": args.id, "error": "stream ended without data"})
                return EXIT_FAILED
            os.replace(tmp, out)
        except grpc.RpcError as err:
            grpc_error(err, video_id=args.id)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        emit(
            {
                "video_id": args.id,
                "path": out,
                "bytes": total,
                "chunks": chunks,
                "largest_chunk": largest,
            }
        )
        return 0

    # --- node service ---------------------------------------------------

    def current_master(self, _args):
        try:
            reply = self.node.GetCurrentMaster(
                self.pb2.GetCurrentMasterRequest(), timeout=UNARY_TIMEOUT_S
            )
        except grpc.RpcError as err:
            grpc_error(err)
        emit(message_dict(reply))
        return 0

    def stats(self, _args):
        try:
            reply = self.node.GetNodeStats(self.pb2.NodeStatsRequest(), timeout=UNARY_TIMEOUT_S)
        except grpc.RpcError as err:
            grpc_error(err)
        emit(message_dict(reply))
        return 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--node", required=True, metavar="HOST:PORT", help="node to talk to")
    p.add_argument("--proto", default=DEFAULT_PROTO, help="path of replication.proto")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upload", help="upload a video in 1 MiB chunks")
    up.add_argument("file")
    up.add_argument("--width", type=int, required=True)
    up.add_argument("--height", type=int, required=True)
    up.add_argument("--format", default="", help="mp4, mkv, webm or mov (empty = mp4)")
    up.add_argument("--upscale-width", type=int, default=0)
    up.add_argument("--upscale-height", type=int, default=0)
    up.add_argument(
        "--video-id",
        default=None,
        help="requested id (default: the file's base name; '' lets the master choose)",
    )

    wt = sub.add_parser("wait", help="poll GetVideoStatus until a final status")
    wt.add_argument("id")
    wt.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")

    rt = sub.add_parser("retrieve", help="download a completed video")
    rt.add_argument("id")
    rt.add_argument("out")

    st = sub.add_parser("status", help="GetVideoStatus once")
    st.add_argument("id")

    sub.add_parser("master", help="GetCurrentMaster")
    sub.add_parser("stats", help="GetNodeStats")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    client = Client(args.node, args.proto)
    handlers = {
        "upload": client.upload,
        "wait": client.wait,
        "retrieve": client.retrieve,
        "status": client.status,
        "master": client.current_master,
        "stats": client.stats,
    }
    try:
        return handlers[args.command](args)
    finally:
        client.channel.close()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
