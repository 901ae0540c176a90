#!/usr/bin/env python3
"""Chaos soak: a cluster under a stream of jobs and a fault every few seconds.

    scripts/chaos.py --node-bin B --client-bin C [--seconds 1800] [--seed N]
                     [--nodes 5] [--clients 8] [--work DIR]

Starts NODES vidshard nodes on 127.0.0.1 (fixed ports, so a restarted node
keeps its address), sends jobs with `vidshard` clients pointed at random
nodes (one every 2-5 s while fewer than --clients are in flight; mixed clips, sizes and formats; some deleted mid-run), and injects a
fault every 3-8 s chosen at random from a seeded generator: kill -9 of the
leader or of another node (restarted 2-6 s later), SIGSTOP then SIGCONT,
a clean restart, and (as root, where `ip netns` works: each node then
runs in its own network namespace on a bridge, its data dir on its own
tmpfs) a network partition of one node or of two together, a slow lossy
link (tc netem), a full disk. At most (NODES-1)//2 nodes are down,
stopped, cut off or full at once, so a majority of voters stays. The
fault sequence comes from the seed (its timing from the run).

At the end (faults stopped, every node back) it checks:
  - every acknowledged upload ended `completed` (output frame-exact, the
    same sha256 retrievable from every node) or was deleted; none stuck;
  - no client exited non-zero for a job that completed;
  - at most one master per term, as seen by polling the nodes;
  - after the nodes stop: no ffmpeg of theirs running, no temp file left.
A failure prints the seed and the fault history so the run can be replayed.
Prints a summary and exits 1 on any violation.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

GC_UNKNOWN_AFTER = 60
DISK_CHECK_SECONDS = 180
CLIPS = [(4, 320, 240), (8, 320, 240), (12, 256, 144)]
SIZES = [(160, 120), (192, 144), (128, 96)]
FORMATS = ["mp4", "mkv"]


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_ports(count):
    ports = set()
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.add(s.getsockname()[1])
    return sorted(ports)


def probe_frames(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path],
        capture_output=True, text=True, check=False)
    try:
        return int(out.stdout.strip().split(",")[0])
    except ValueError:
        return -1


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sh(*command, check=True):
    """Runs an `ip`/`tc`/`mount` command; output only on failure."""
    out = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {out.stderr.strip()}")
    return out.returncode == 0


class Net:
    """Each node in its own network namespace, its veth on one bridge (the
    clients reach it from here through the bridge's address). A partition
    moves a node's veth to a second bridge with no address: cut off from
    the others and the clients, but with the other node of a two-node
    partition. A slow link is netem on both ends of its veth."""

    def __init__(self, seed, count, disk_mib):
        self.tag = "vc" + hashlib.sha256(str(seed).encode()).hexdigest()[:5]
        self.subnet = f"10.213.{seed % 250}"
        self.count = count
        self.disk_mib = disk_mib
        self.mounts = []

    @staticmethod
    def available():
        if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None:
            return False
        probe = "vcprobe" + str(os.getpid())
        if not sh("ip", "netns", "add", probe, check=False):
            return False
        sh("ip", "netns", "del", probe, check=False)
        return True

    def ns(self, i):
        return f"{self.tag}n{i}"

    def host_end(self, i):
        return f"{self.tag}h{i}"

    def ip(self, i):
        return f"{self.subnet}.{i + 1}"

    def setup(self):
        self.teardown()
        main, island = self.tag + "br", self.tag + "bx"
        sh("ip", "link", "add", main, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.254/24", "dev", main)
        sh("ip", "link", "set", main, "up")
        sh("ip", "link", "add", island, "type", "bridge")
        sh("ip", "link", "set", island, "up")
        for i in range(self.count):
            ns, host, peer = self.ns(i), self.host_end(i), f"{self.tag}p{i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", peer, "netns", ns)
            sh("ip", "-n", ns, "link", "set", peer, "name", "eth0")
            sh("ip", "-n", ns, "addr", "add", f"{self.ip(i)}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "link", "set", host, "master", main, "up")

    def mount_disk(self, path):
        os.makedirs(path, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", f"size={self.disk_mib}m", "tmpfs", path)
        self.mounts.append(path)

    def cut(self, i):
        sh("ip", "link", "set", self.host_end(i), "master", self.tag + "bx")

    def heal(self, i):
        sh("ip", "link", "set", self.host_end(i), "master", self.tag + "br", check=False)

    def slow(self, i, delay_ms, loss_pct, kbit):
        """Delay and loss (netem) where the kernel has netem, else a rate
        limit (tbf: its queue delays too). Answers what was applied."""
        netem = ["root", "netem", "delay", f"{delay_ms}ms", f"{delay_ms // 4}ms",
                 "loss", f"{loss_pct}%"]
        tbf = ["root", "tbf", "rate", f"{kbit}kbit", "burst", "16kbit", "latency",
               f"{delay_ms * 4}ms"]
        for qdisc, what in ((netem, f"{delay_ms} ms, {loss_pct}% loss"),
                            (tbf, f"{kbit} kbit/s")):
            if sh("tc", "qdisc", "replace", "dev", self.host_end(i), *qdisc, check=False):
                sh("ip", "netns", "exec", self.ns(i), "tc", "qdisc", "replace", "dev", "eth0",
                   *qdisc)
                return what
        raise RuntimeError(f"tc: neither netem nor tbf works on {self.host_end(i)}")

    def fast(self, i):
        sh("tc", "qdisc", "del", "dev", self.host_end(i), "root", check=False)
        sh("ip", "netns", "exec", self.ns(i), "tc", "qdisc", "del", "dev", "eth0", "root",
           check=False)

    def teardown(self):
        for path in self.mounts:
            sh("umount", "-l", path, check=False)
        self.mounts = []
        for i in range(self.count):
            sh("ip", "link", "del", self.host_end(i), check=False)
            sh("ip", "netns", "del", self.ns(i), check=False)
        sh("ip", "link", "del", self.tag + "br", check=False)
        sh("ip", "link", "del", self.tag + "bx", check=False)


def fill_disk(path):
    """Writes a balloon file until the filesystem at `path` is full."""
    balloon = os.path.join(path, "chaos-balloon")
    block = b"\0" * (1 << 20)
    try:
        with open(balloon, "wb") as f:
            while True:
                f.write(block)
    except OSError:
        pass
    return balloon


class Node:
    def __init__(self, index, port, args, work, env, host="127.0.0.1", netns=None):
        self.index = index
        self.port = port
        self.host = host
        self.netns = netns
        self.address = f"{host}:{port}"
        self.data_dir = os.path.join(work, f"n{index + 1}")
        self.log_path = os.path.join(work, f"n{index + 1}.log")
        self.args = args
        self.env = env
        self.proc = None
        self.stopped = False
        # A fault on the node's link or disk, healed by a timer: no other
        # fault is put on the node meanwhile.
        self.impaired = None
        self.balloon = None
        self.starting = threading.Lock()
        # Set while the soak itself has the node down (a kill or restart):
        # any other exit is the node's own, which a service manager
        # (systemd Restart=on-failure) answers by starting it again.
        self.downed = False

    def start(self, node_bin, extra):
        log_file = open(self.log_path, "ab")
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen(
            inside + [node_bin, "--host", self.host, "--port", str(self.port),
             "--data-dir", self.data_dir, "--shard-seconds", "2", "--slots", "1",
             "--drain-timeout", "5"] + extra,
            stdout=subprocess.DEVNULL, stderr=log_file, env=self.env)
        self.stopped = False
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex((self.host, self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.index + 1} exited at start; see {self.log_path}")
            time.sleep(0.1)
        raise RuntimeError(f"node {self.index + 1} did not listen within 30 s")

    def up(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.up():
            os.kill(self.proc.pid, sig)


class Soak:
    def __init__(self, args):
        self.args = args
        # One generator per thread: the faults chosen depend only on the seed.
        self.rng = random.Random(args.seed)
        self.client_rng = random.Random(args.seed + 1)
        self.watch_rng = random.Random(args.seed + 2)
        self.work = args.work or tempfile.mkdtemp(prefix="vidshard-chaos-")
        os.makedirs(self.work, exist_ok=True)
        self.env = dict(os.environ)
        self.env["VIDSHARD_JOIN_TOKEN"] = "join-chaos-" + hashlib.sha256(
            str(args.seed).encode()).hexdigest()
        self.env.pop("VIDSHARD_TOKEN", None)
        self.env["RUST_LOG"] = "info"
        # Blobs no job ever named (a result whose master died first) go
        # after 60 s instead of 10 min, so the disk check can see every
        # store come back to what the jobs need minutes after the end.
        self.env["VIDSHARD_GC_UNKNOWN_AFTER"] = str(GC_UNKNOWN_AFTER)
        ports = free_ports(args.nodes)
        self.net = None
        if not args.no_netns and Net.available():
            self.net = Net(args.seed, args.nodes, args.disk_mib)
            self.nodes = [Node(i, p, [], self.work, self.env, host=self.net.ip(i),
                               netns=self.net.ns(i)) for i, p in enumerate(ports)]
        else:
            self.nodes = [Node(i, p, [], self.work, self.env) for i, p in enumerate(ports)]
        self.lock = threading.Lock()
        self.history = []          # (seconds since start, fault, node)
        self.jobs = []             # dicts, one per client
        self.masters = {}          # term -> set of master addresses
        self.violations = []
        self.stop_faults = threading.Event()
        self.stop_clients = threading.Event()
        self.started = time.time()
        self.operator = None
        self.self_exits = []       # (seconds, node, exit status): restarted
        self.outputs = set()       # sha256 of every completed output
        self.sources = set()       # sha256 of every clip uploaded

    # --- helpers -----------------------------------------------------------
    def node_extra(self, node):
        return [] if node.index == 0 else ["--role", "worker", "--master", self.nodes[0].address]

    def cli(self, node, args, timeout=600, token=False, also=()):
        """Runs the client against `node` (then the nodes in `also`, as
        an operator lists several in --node)."""
        addresses = ",".join([node.address] + [n.address for n in also if n is not node])
        command = [self.args.client_bin, "--json", "--node", addresses]
        if token:
            command += ["--token", self.operator]
        try:
            out = subprocess.run(command + args, capture_output=True, text=True,
                                 timeout=timeout, env=self.env, check=False)
        except subprocess.TimeoutExpired:
            return None, -1, "timed out"
        try:
            doc = json.loads(out.stdout) if out.stdout.strip() else None
        except json.JSONDecodeError:
            doc = None
        return doc, out.returncode, out.stderr.strip()

    def live(self):
        return [n for n in self.nodes if n.up() and not n.stopped]

    def reachable(self):
        return [n for n in self.live() if n.impaired != "cut"]

    def healthy(self):
        """Nodes no fault is on now: the candidates for the next one."""
        return [n for n in self.live() if n.impaired is None]

    def record(self, fault, node):
        with self.lock:
            self.history.append((round(time.time() - self.started, 1), fault, node.index + 1))
        log(f"fault: {fault} node {node.index + 1}")

    # --- the cluster -------------------------------------------------------
    def start_cluster(self):
        if self.net:
            self.net.setup()
            for node in self.nodes:
                self.net.mount_disk(node.data_dir)
        for node in self.nodes:
            node.start(self.args.node_bin, self.node_extra(node))
        out = subprocess.run([self.args.node_bin, "token", "--operator", "--data-dir",
                              self.nodes[0].data_dir], capture_output=True, text=True,
                             env=self.env, check=True)
        self.operator = out.stdout.strip()
        deadline = time.time() + 60
        while time.time() < deadline:
            doc, code, _ = self.cli(self.nodes[0], ["nodes"], timeout=10)
            if code == 0 and doc and sum(1 for n in doc["nodes"] if n["alive"]) == len(self.nodes):
                log(f"{len(self.nodes)} nodes alive; work dir {self.work}")
                return
            time.sleep(0.5)
        raise RuntimeError("the cluster did not form within 60 s")

    def leader(self):
        for node in self.reachable():
            doc, code, _ = self.cli(node, ["nodes"], timeout=10)
            if code == 0 and doc and doc.get("master_address"):
                for candidate in self.nodes:
                    if candidate.address == doc["master_address"]:
                        return candidate
        return None

    # --- faults ------------------------------------------------------------
    def fault_loop(self):
        try:
            self.inject_faults()
        except Exception as err:  # a broken injector must not pass silently
            self.violations.append(f"the fault injector stopped: {err!r}")
            raise

    def inject_faults(self):
        down_limit = (len(self.nodes) - 1) // 2
        kinds = ["kill_leader", "kill", "stop", "restart"]
        if self.net:
            kinds += ["cut", "cut_two", "slow", "full_disk"]
        while not self.stop_faults.wait(self.rng.uniform(3, 8)):
            down = [n for n in self.nodes
                    if not n.up() or n.stopped or n.impaired in ("cut", "full_disk")]
            room = down_limit - len(down)
            kind = self.rng.choice(kinds)
            if room < (2 if kind == "cut_two" else 1):
                continue
            if kind == "full_disk" and any(n.impaired == "full_disk" for n in self.nodes):
                continue
            target = self.leader() if kind == "kill_leader" else None
            candidates = self.healthy()
            if target is None or target not in candidates:
                if not candidates:
                    continue
                target = self.rng.choice(candidates)
            if kind in ("kill_leader", "kill"):
                self.record(kind, target)
                target.downed = True
                target.signal(signal.SIGKILL)
                target.proc.wait()
                delay = self.rng.uniform(2, 6)
                threading.Timer(delay, self.restart, args=(target,)).start()
            elif kind == "stop":
                self.record(kind, target)
                target.signal(signal.SIGSTOP)
                target.stopped = True
                delay = self.rng.uniform(3, 8)
                threading.Timer(delay, self.resume, args=(target,)).start()
            elif kind == "restart":
                self.record(kind, target)
                target.downed = True
                target.signal(signal.SIGTERM)
                try:
                    target.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.violations.append(f"node {target.index + 1} did not stop within 60 s of SIGTERM")
                    target.signal(signal.SIGKILL)
                    target.proc.wait()
                self.restart(target)
            elif kind in ("cut", "cut_two"):
                group = [target]
                others = [n for n in candidates if n is not target]
                if kind == "cut_two" and others:
                    group.append(self.rng.choice(others))
                duration = self.rng.uniform(5, 15)
                for node in group:
                    self.record(kind, node)
                    node.impaired = "cut"
                    self.net.cut(node.index)
                threading.Timer(duration, self.heal, args=(group,)).start()
            elif kind == "slow":
                delay_ms, loss = self.rng.randint(100, 400), self.rng.randint(1, 5)
                kbit = self.rng.choice([256, 512, 1024, 2048])
                duration = self.rng.uniform(10, 20)
                target.impaired = "slow"
                what = self.net.slow(target.index, delay_ms, loss, kbit)
                self.record(f"slow ({what})", target)
                threading.Timer(duration, self.heal, args=([target],)).start()
            else:
                duration = self.rng.uniform(5, 15)
                self.record(kind, target)
                target.impaired = "full_disk"
                target.balloon = fill_disk(target.data_dir)
                threading.Timer(duration, self.heal, args=([target],)).start()

    def heal(self, group):
        for node in group:
            if node.impaired == "cut":
                self.net.heal(node.index)
            elif node.impaired == "slow":
                self.net.fast(node.index)
            elif node.impaired == "full_disk":
                try:
                    os.remove(node.balloon)
                except OSError:
                    pass
            node.impaired = None

    def restart(self, node, final=False):
        """Starts a node that is down. During the soak a start that fails
        (a disk still full) is left to the supervisor to try again, as
        systemd would; the final start of every node must succeed."""
        with node.starting:
            if node.up():
                return
            try:
                node.start(self.args.node_bin, self.node_extra(node))
                node.downed = False
            except RuntimeError as err:
                if final:
                    self.violations.append(str(err))
                else:
                    log(f"{err}: the supervisor tries again")
                    node.downed = False

    def resume(self, node):
        node.signal(signal.SIGCONT)
        node.stopped = False

    # --- watchers ----------------------------------------------------------
    def supervise(self):
        """What systemd does for a node that exits by itself."""
        for node in self.nodes:
            if node.proc is not None and not node.up() and not node.downed:
                code = node.proc.returncode
                with self.lock:
                    self.self_exits.append((round(time.time() - self.started, 1), node.index + 1, code))
                log(f"node {node.index + 1} exited by itself (status {code}): starting it again")
                node.downed = True
                threading.Timer(1.0, self.restart, args=(node,)).start()

    def term_loop(self):
        while not self.stop_clients.wait(1.0):
            self.supervise()
            live = self.live()
            if not live:
                continue
            node = self.watch_rng.choice(live)
            doc, code, _ = self.cli(node, ["nodes"], timeout=10)
            if code == 0 and doc and doc.get("master_address"):
                with self.lock:
                    self.masters.setdefault(doc.get("term"), set()).add(doc["master_address"])

    # --- clients -----------------------------------------------------------
    def client(self, number, clip, frames):
        with self.lock:
            width, height = self.client_rng.choice(SIZES)
            fmt = self.client_rng.choice(FORMATS)
            delete = self.client_rng.random() < 0.1
            node = self.client_rng.choice(self.live() or self.nodes)
            pause = self.client_rng.uniform(0, 3)
        out = os.path.join(self.work, f"out-{number}.{fmt}")
        job = {"number": number, "clip": clip, "frames": frames, "node": node.index + 1,
               "size": (width, height), "format": fmt, "delete": delete, "id": None,
               "exit": None, "error": "", "output": out}
        with self.lock:
            self.jobs.append(job)
        args = ["upload", clip, "--width", str(width), "--height", str(height), "--format", fmt]
        if delete:
            doc, code, err = self.cli(node, args, timeout=300)
            job["exit"], job["error"] = code, err
            if code == 0 and doc:
                job["id"] = doc.get("id")
                time.sleep(pause)
                # An operator deleting a job names every node it knows:
                # the one it picks may be cut off (the only one a client
                # that knows a single address can never get past).
                target = self.live()[0] if self.live() else self.nodes[0]
                _, dcode, derr = self.cli(target, ["delete", job["id"]], timeout=120, token=True,
                                          also=self.nodes)
                job["deleted"] = dcode == 0
                job["delete_error"] = derr
            return
        doc, code, err = self.cli(node, args + ["--output", out], timeout=900)
        job["exit"], job["error"] = code, err
        if doc:
            job["id"] = doc.get("id")

    def client_loop(self, clips):
        number = 0
        threads = []
        while not self.stop_clients.wait(self.client_rng.uniform(2, 5)):
            # A steady stream the cluster can keep up with on average: at
            # most --clients uploads in flight (an unbounded stream only
            # measures how long a backlog takes, not what faults lose).
            if sum(t.is_alive() for t in threads) >= self.args.clients:
                continue
            with self.lock:
                clip, frames = self.client_rng.choice(clips)
            number += 1
            t = threading.Thread(target=self.client, args=(number, clip, frames), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(timeout=900)

    # --- the check ---------------------------------------------------------
    def check(self):
        ok = {"completed": 0, "deleted": 0}
        anchor = self.nodes[0]
        for job in self.jobs:
            name = f"job #{job['number']} ({job['id'] or 'no id'})"
            if job["delete"]:
                if job["exit"] == 0 and job.get("deleted"):
                    ok["deleted"] += 1
                elif job["exit"] == 0:
                    self.violations.append(f"{name}: delete failed: {job.get('delete_error')}")
                continue
            if job["id"] is None:
                # Never acknowledged: the client must say why, and exit non-zero.
                if job["exit"] == 0:
                    self.violations.append(f"{name}: exit 0 without a job id")
                continue
            doc, code, err = self.cli(anchor, ["status", job["id"]], timeout=60)
            status = doc.get("status") if doc else None
            if status != "completed":
                self.violations.append(f"{name}: ended {status!r} ({err or (doc or {}).get('message')})")
                continue
            if job["exit"] != 0:
                self.violations.append(f"{name}: completed but the client exited {job['exit']}: {job['error']}")
                continue
            frames = probe_frames(job["output"])
            if frames != job["frames"]:
                self.violations.append(f"{name}: {frames} frames out, {job['frames']} in")
            want = sha256_of(job["output"])
            for node in self.nodes:
                again = os.path.join(self.work, f"again-{job['number']}-{node.index + 1}")
                _, rcode, rerr = self.cli(node, ["retrieve", job["id"], "--output", again], timeout=120)
                if rcode != 0 or sha256_of(again) != want:
                    self.violations.append(f"{name}: retrieve from node {node.index + 1}: {rerr or 'sha256 differs'}")
                if os.path.exists(again):
                    os.remove(again)
            self.outputs.add(doc.get("output", {}).get("sha256", ""))
            ok["completed"] += 1
        for term, masters in sorted(self.masters.items(), key=lambda kv: kv[0] or 0):
            if len(masters) > 1:
                self.violations.append(f"term {term} had {len(masters)} masters: {sorted(masters)}")
        return ok

    def check_disk(self):
        """Once the collectors have run, each node's store holds only what
        the jobs need: uploaded sources and completed outputs."""
        doc, code, err = self.cli(self.nodes[0], ["jobs", "--limit", "0"], timeout=60)
        if code != 0 or not doc:
            self.violations.append(f"disk check: cannot list the jobs: {err}")
            return
        # Jobs no client saw through (an upload whose acknowledgement was
        # lost with its node) still own their outputs.
        listed = {(job.get("output") or {}).get("sha256") for job in doc.get("jobs", [])}
        wanted = self.sources | self.outputs | listed
        deadline = time.time() + DISK_CHECK_SECONDS
        while True:
            extra = {}
            for node in self.nodes:
                blobs = os.path.join(node.data_dir, "blobs")
                names = [f for _, _, files in os.walk(blobs) for f in files]
                left = [n for n in names if n not in wanted]
                if left:
                    extra[node.index + 1] = left
            if not extra or time.time() > deadline:
                break
            time.sleep(2)
        for index, left in extra.items():
            path = os.path.join(self.nodes[index - 1].data_dir, "blobs", left[0][:2], left[0])
            probe = subprocess.run(
                ["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration",
                 "-of", "csv=p=0", path], capture_output=True, text=True, check=False)
            size = os.path.getsize(path) if os.path.exists(path) else -1
            self.violations.append(
                f"node {index} still holds {len(left)} blobs no job needs "
                f"{DISK_CHECK_SECONDS} s after the end, "
                f"e.g. {left[0]} ({size} bytes, {probe.stdout.strip() or probe.stderr.strip()[:80]})")

    def stop_all_and_check_leftovers(self):
        for node in self.nodes:
            node.signal(signal.SIGCONT)
            node.signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.violations.append(f"node {node.index + 1} did not stop within 60 s")
                    node.signal(signal.SIGKILL)
        time.sleep(2.5)  # the watchers' grace (2 s) has passed
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("ffmpeg") and self.work in cmd:
                self.violations.append(f"orphaned encoder {pid}: {cmd[:120]}")
        for node in self.nodes:
            tmp = os.path.join(node.data_dir, "tmp")
            if os.path.isdir(tmp):
                left = [os.path.join(d, f) for d, _, files in os.walk(tmp) for f in files]
                if left:
                    self.violations.append(f"node {node.index + 1} left {len(left)} temp files, e.g. {left[0]}")

    def run(self):
        log(f"seed {self.args.seed}; {self.args.seconds} s; {len(self.nodes)} nodes")
        clips = []
        for seconds, w, h in CLIPS:
            path = os.path.join(self.work, f"clip-{seconds}s-{w}x{h}.mp4")
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                            f"testsrc2=size={w}x{h}:rate=30", "-f", "lavfi", "-i",
                            "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
                            "-c:v", "libx264", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac",
                            "-shortest", path], check=True)
            clips.append((path, probe_frames(path)))
            self.sources.add(sha256_of(path))
        self.start_cluster()
        threads = [threading.Thread(target=self.fault_loop, daemon=True),
                   threading.Thread(target=self.term_loop, daemon=True)]
        clients = threading.Thread(target=self.client_loop, args=(clips,), daemon=True)
        for t in threads + [clients]:
            t.start()
        time.sleep(self.args.seconds)
        log("time is up: no more faults; every node comes back; clients finish")
        self.stop_faults.set()
        threads[0].join()
        # Pending timers may fire later: heal, resume and restart are
        # idempotent.
        for node in self.nodes:
            self.heal([node])
            self.resume(node)
            self.restart(node, final=True)
        self.stop_clients.set()
        clients.join()
        counts = self.check()
        self.check_disk()
        self.stop_all_and_check_leftovers()
        if self.net:
            self.net.teardown()
        kinds = {}
        for _, kind, _ in self.history:
            kind = kind.split(" (")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        print(json.dumps({
            "seed": self.args.seed, "seconds": self.args.seconds, "nodes": len(self.nodes),
            "faults": len(self.history), "faults_by_kind": kinds, "jobs": len(self.jobs),
            "completed_and_verified": counts["completed"], "deleted": counts["deleted"],
            "never_acknowledged": sum(1 for j in self.jobs if j["id"] is None),
            "terms_seen": len(self.masters), "self_exits": self.self_exits,
            "violations": len(self.violations),
        }, indent=1), flush=True)
        if self.violations:
            print("VIOLATIONS:", flush=True)
            for v in self.violations:
                print(f"  {v}", flush=True)
            print(f"replay with --seed {self.args.seed}; fault history (s, fault, node):", flush=True)
            for entry in self.history:
                print(f"  {entry}", flush=True)
            print(f"logs in {self.work}", flush=True)
            return 1
        if not self.args.work:
            shutil.rmtree(self.work, ignore_errors=True)
        return 0


def interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    signal.signal(signal.SIGTERM, interrupted)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-bin", required=True)
    parser.add_argument("--client-bin", required=True)
    parser.add_argument("--seconds", type=int, default=1800)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8,
                        help="most client commands in flight at once")
    parser.add_argument("--work", default=None)
    parser.add_argument("--no-netns", action="store_true",
                        help="keep every node on 127.0.0.1 (no partition, slow link or full disk)")
    parser.add_argument("--disk-mib", type=int, default=768,
                        help="size of each node's tmpfs data dir (with netns)")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    soak = Soak(args)
    try:
        return soak.run()
    finally:
        for node in soak.nodes:
            if node.up():
                node.signal(signal.SIGCONT)
                node.signal(signal.SIGKILL)
                node.proc.wait()
        if soak.net:
            soak.net.teardown()


if __name__ == "__main__":
    sys.exit(main())
