"""Asks nodes about leadership over gRPC, as an outsider would.

  cluster_probe.py ROOT leaders ADDR...       one JSON line per node:
      {"address", "is_master", "master", "term", "election"} from the
      original NodeService.GetNodeStats (or {"address", "error"})
  cluster_probe.py ROOT stale-push ADDR TERM  sends vidshard.v1
      Worker/PushBlob with that (old) term; prints {"stored", "message"}

ROOT is the repository root (for the .proto files)."""

import json
import os
import sys

sys.path.insert(0, os.path.join(sys.argv[1], "tests", "legacy"))
from protoload import load_protocol  # noqa: E402

import grpc  # noqa: E402


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(2)


def leaders(root, addresses):
    pb2, pb2_grpc = load_protocol(os.path.join(root, "proto", "proto", "replication.proto"), fail)
    for address in addresses:
        try:
            with grpc.insecure_channel(address) as channel:
                stub = pb2_grpc.NodeServiceStub(channel)
                stats = stub.GetNodeStats(pb2.NodeStatsRequest(), timeout=5)
                print(json.dumps({
                    "address": address,
                    "is_master": stats.is_master,
                    "master": stats.current_master_address,
                    "term": stats.current_term,
                    "election": stats.election_in_progress,
                }))
        except grpc.RpcError as e:
            print(json.dumps({"address": address, "error": e.details() or str(e.code())}))


def stale_push(root, address, term):
    pb2, pb2_grpc = load_protocol(os.path.join(root, "proto", "proto", "vidshard.proto"), fail)
    data = b"stale master bytes"
    import hashlib

    header = pb2.BlobHeader(
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), term=term, purpose="stale test"
    )
    messages = [pb2.PushBlobRequest(header=header), pb2.PushBlobRequest(chunk=data)]
    with grpc.insecure_channel(address) as channel:
        # A member's push: it carries the join token (VIDSHARD_JOIN_TOKEN).
        token = os.environ.get("VIDSHARD_JOIN_TOKEN", "")
        reply = pb2_grpc.WorkerStub(channel).PushBlob(
            iter(messages), timeout=10, metadata=[("authorization", f"Bearer {token}")]
        )
        print(json.dumps({"stored": reply.stored, "message": reply.message}))


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    root, command = sys.argv[1], sys.argv[2]
    if command == "leaders":
        leaders(root, sys.argv[3:])
    elif command == "stale-push" and len(sys.argv) == 5:
        stale_push(root, sys.argv[3], int(sys.argv[4]))
    else:
        fail(__doc__)


if __name__ == "__main__":
    main()
