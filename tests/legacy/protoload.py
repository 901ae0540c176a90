"""Compiles a .proto at run time (grpc_tools) into a temp dir and imports
the generated modules, so the legacy peers need no generated code in git."""

import importlib
import os
import sys
import tempfile


def load_protocol(proto_path, fail):
    """Returns (pb2, pb2_grpc) for `proto_path`; calls `fail(message)` on error."""
    from grpc_tools import protoc

    try:
        from importlib.resources import files

        well_known = str(files("grpc_tools") / "_proto")
    except (ImportError, AttributeError):  # very old Python/grpc_tools
        import pkg_resources

        well_known = pkg_resources.resource_filename("grpc_tools", "_proto")

    proto_path = os.path.abspath(proto_path)
    if not os.path.isfile(proto_path):
        fail(f"proto file not found: {proto_path}")
    proto_dir, proto_file = os.path.split(proto_path)
    module = os.path.splitext(proto_file)[0]
    sys.dont_write_bytecode = True
    with tempfile.TemporaryDirectory(prefix="legacy-proto-") as out:
        rc = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{proto_dir}",
                f"-I{well_known}",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                proto_file,
            ]
        )
        if rc != 0:
            fail(f"protoc failed on {proto_path} (exit {rc})")
        sys.path.insert(0, out)
        try:
            pb2 = importlib.import_module(f"{module}_pb2")
            pb2_grpc = importlib.import_module(f"{module}_pb2_grpc")
        finally:
            sys.path.remove(out)
    return pb2, pb2_grpc
