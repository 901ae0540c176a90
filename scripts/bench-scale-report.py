#!/usr/bin/env python3
"""The report of scripts/bench-scale.sh: reads its work dir and prints the
table (wall time, speedup against plain ffmpeg under one machine's quota,
efficiency, the scripts/bench.sh projection beside the measured speedup,
time per stage, bytes moved per machine, shards) and, for every machine
count below the target, where the time above the ideal went.

    bench-scale-report.py WORK [--brief]
    bench-scale-report.py --sample OUT.json I=CGROUP_PROCS_FILE ...

The second form runs during a job until SIGTERM: every 0.2 s it reads the
CPU time of every process in each machine's cgroup and, at the end, writes
the CPU per machine and kind of process (encode, split, join, ffprobe,
...) to OUT.json. A process shorter than a sample is missed; the report
shows the remainder as unsampled.

WORK holds meta.txt, baseline.txt and one run-N/ per machine count with
client.txt, counters.txt, nodes.json, status.json and the nodes' JSON logs
(n1.log ...). Python 3.11, standard library only.
"""

import datetime
import heapq
import json
import math
import os
import re
import sys

TARGET_SPEEDUP_AT_8 = 6.5
TARGET_EFFICIENCY = 0.80


def read_kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition(" ")
            if key:
                out[key] = value
    return out


def ts(stamp):
    """RFC 3339 (tracing's JSON `timestamp`) to unix seconds."""
    stamp = stamp.rstrip("Z")
    if "." in stamp:
        head, frac = stamp.split(".", 1)
        frac = re.sub(r"[^0-9].*$", "", frac)[:6]
        stamp = f"{head}.{frac}"
    at = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc)
    return at.timestamp()


def log_events(path):
    """(unix time, message, fields) of every JSON line of a node's log."""
    events = []
    try:
        f = open(path, errors="replace")
    except OSError:
        return events
    with f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
                fields = d.get("fields", {})
                events.append((ts(d["timestamp"]), fields.get("message", ""), fields, d.get("level", "")))
            except (ValueError, KeyError):
                continue
    return events


def target_speedup(n):
    return TARGET_SPEEDUP_AT_8 * n / 8 if n >= 8 else TARGET_EFFICIENCY * n


def makespan(times, slots):
    heap = [0.0] * max(1, slots)
    for x in sorted(times, reverse=True):
        heapq.heappush(heap, heapq.heappop(heap) + x)
    return max(heap)


def projection(status, slots_per_machine, counts):
    """scripts/bench.sh's projection: the measured shard encode times placed
    longest first on the least-loaded slot, plus what does not overlap the
    encodes (probe and plan, the first shard's share of the split, the
    join). Answers {machines: (wall, speedup against 1 machine)}."""
    t = status["timings"]
    times = [s["encode_seconds"] for s in status["shards"]]
    probe = max(0.0, t["total_seconds"] - t["encode_stage_seconds"] - t["join_seconds"])
    first_shard = t["probe_split_seconds"] / max(1, len(times))
    fixed = probe + first_shard + t["join_seconds"]
    base = fixed + makespan(times, slots_per_machine)
    out = {}
    for m in counts:
        wall = fixed + makespan(times, slots_per_machine * m)
        out[m] = (wall, base / wall)
    return out, fixed


class Run:
    def __init__(self, work, n, meta):
        d = os.path.join(work, f"run-{n}")
        self.n = n
        self.dir = d
        self.client = read_kv(os.path.join(d, "client.txt"))
        self.status = json.load(open(os.path.join(d, "status.json")))
        self.nodes = json.load(open(os.path.join(d, "nodes.json")))
        self.t0 = float(self.client["t0"])
        self.t1 = float(self.client["t1"])
        self.wall = self.t1 - self.t0
        t = self.status["timings"]
        self.total = t["total_seconds"]
        self.probe_split = t["probe_split_seconds"]
        self.encode_stage = t["encode_stage_seconds"]
        self.join = t["join_seconds"]
        self.probe_plan = max(0.0, self.total - self.encode_stage - self.join)
        self.shards = self.status["shards"]
        self.created = self.status["created_unix_ms"] / 1000.0
        self.upload = self.created - self.t0
        self.master_addr = self.nodes.get("master_address", "")
        self.master_index = self._index_of(self.master_addr)
        self.slots = sum(max(1, nd.get("slots_total", 1)) for nd in self.nodes["nodes"]) or n
        self.slots_of = {nd["id"]: max(1, nd.get("slots_total", 1)) for nd in self.nodes["nodes"]}
        self.index_of_id = {nd["id"]: self._index_of(nd["address"]) for nd in self.nodes["nodes"]}
        # Counters: bytes through each machine's link, CPU used by its group.
        before, after = {}, {}
        self.proc = {}  # machine: (node process CPU ticks, its waited-for children's)
        for line in open(os.path.join(d, "counters.txt")):
            parts = line.split()
            if parts and parts[0] == "proc" and len(parts) >= 4:
                self.proc[int(parts[1])] = (int(parts[2]), int(parts[3]))
                continue
            if len(parts) < 6:
                continue
            row = [int(float(x)) for x in parts[2:6]]
            (before if parts[0] == "before" else after)[int(parts[1])] = row
        self.bytes = {}
        self.cpu = {}
        self.throttled = {}
        for i, b in before.items():
            a = after.get(i, b)
            self.bytes[i] = (a[0] - b[0], a[1] - b[1])  # (sent by the machine, received by it)
            self.cpu[i] = (a[2] - b[2]) / 1e9
            self.throttled[i] = (a[3] - b[3]) / 1e9
        # The master's log: when things happened.
        self.events = log_events(os.path.join(d, f"n{self.master_index or 1}.log"))
        self.completed_at = None
        self.accepted_at = None
        for at, msg, fields, _ in self.events:
            if msg == "job completed" and fields.get("job") == self.status["id"]:
                self.completed_at = at
            if msg == "upload accepted" and fields.get("job") == self.status["id"]:
                self.accepted_at = at
        self.raft_timeouts = sum(
            1 for at, msg, fields, level in self.events
            if level in ("WARN", "ERROR") and self.t0 <= at <= self.t1
            and (msg.startswith("error replication to") or msg.startswith("heartbeat error")))
        self.started_at = (self.completed_at - self.total) if self.completed_at else self.created
        self.admission = max(0.0, self.started_at - self.created)
        self.job_end = self.completed_at if self.completed_at else self.created + self.total
        self.download = max(0.0, self.t1 - self.job_end)
        self.planned_at = self.started_at + self.probe_plan
        self.split_end = self.started_at + self.probe_split
        self.encode_end = self.planned_at + self.encode_stage
        self._slot_accounting()

    def _index_of(self, address):
        m = re.match(r"^\d+\.\d+\.\d+\.(\d+):\d+$", address or "")
        return int(m.group(1)) - 10 if m else None

    def _slot_accounting(self):
        """Busy intervals of every slot from the master's log (a copy runs
        from `shard assigned` to `shard done`, `shard copy cancelled` or a
        failure), and the idle slot-time of the encode stage split into:
        before the split stored its last shard, after it until the last
        assignment (assignment latency), and after the last assignment
        (the tail: no shard left to start)."""
        job = self.status["id"]
        open_copies = {}
        intervals = []  # (worker, start, end)
        self.assigned = []
        self.duplicates = 0
        self.failures = 0
        for at, msg, f, _ in self.events:
            if f.get("job") != job:
                continue
            key = (f.get("shard"), f.get("worker"))
            if msg == "shard assigned":
                open_copies[key] = at
                self.assigned.append(at)
                if f.get("duplicate") in (True, "true"):
                    self.duplicates += 1
            elif msg in ("shard done", "shard copy cancelled") or "running the shard elsewhere" in msg:
                if "running the shard elsewhere" in msg:
                    self.failures += 1
                start = open_copies.pop(key, None)
                if start is not None:
                    intervals.append((f.get("worker"), start, at))
        for (shard, worker), start in open_copies.items():
            intervals.append((worker, start, self.encode_end))
        self.intervals = intervals
        firsts = {}
        for w, start, _ in intervals:
            firsts[w] = min(start, firsts.get(w, start))
        self.all_busy_at = max(firsts.values()) if len(firsts) >= len(self.slots_of) and firsts else None
        self.first_assigned = min(self.assigned) if self.assigned else None
        self.last_assigned = max(self.assigned) if self.assigned else None
        lo, hi = self.planned_at, self.encode_end
        step = 0.01
        steps = max(0, int((hi - lo) / step))
        per_worker = {}
        for w, s, e in intervals:
            per_worker.setdefault(w, []).append((s, e))
        idle = {"split": 0.0, "assign": 0.0, "tail": 0.0}
        busy_total = 0.0
        workers = list(self.slots_of) or list(per_worker)
        last = self.last_assigned or hi
        for k in range(steps):
            t = lo + (k + 0.5) * step
            free = 0
            for w in workers:
                busy = sum(1 for s, e in per_worker.get(w, ()) if s <= t < e)
                slots = self.slots_of.get(w, 1)
                busy_total += min(busy, slots) * step
                free += max(0, slots - busy)
            if free == 0:
                continue
            if t < self.split_end:
                idle["split"] += free * step
            elif t < last:
                idle["assign"] += free * step
            else:
                idle["tail"] += free * step
        self.idle = idle
        self.busy = busy_total
        self.have_log = bool(intervals)

    # Sums over shards.
    def enc_sum(self):
        return sum(s["encode_seconds"] for s in self.shards)

    def xfer_sum(self):
        return sum(s["transfer_seconds"] for s in self.shards)

    def remote_shards(self):
        return [s for s in self.shards if self._index_of(s.get("worker", "")) != self.master_index]

    def mb_moved(self):
        per = [(sent + got) / 1e6 for sent, got in self.bytes.values()]
        return (max(per), sum(per) / len(per)) if per else (0.0, 0.0)


def fmt(x, digits=1):
    return f"{x:.{digits}f}"


def kind_of(cmdline):
    """What a process in a machine's cgroup is doing, from its command line."""
    if not cmdline:
        return "?"
    prog = os.path.basename(cmdline[0])
    line = " ".join(cmdline)
    if prog == "vidshard-node":
        return "reap watcher" if len(cmdline) > 1 and cmdline[1] == "reap" else "node"
    if prog == "ffprobe":
        return "ffprobe (probe, checks)"
    if prog == "ffmpeg":
        if "-f segment" in line:
            return "ffmpeg split"
        if "-f concat" in line:
            return "ffmpeg join"
        if "-progress" in line and ("libx264" in line or "libx265" in line or "libsvtav1" in line or "libvpx" in line):
            return "ffmpeg encode"
        if "-vn" in line or "-an" not in line and "-map 0:a" in line:
            return "ffmpeg audio/side tracks"
        return "ffmpeg other"
    return prog


def sample(out, specs):
    import signal
    import time
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    tck = os.sysconf("SC_CLK_TCK")
    seen = {}  # (pid, starttime) -> [machine, kind, ticks]
    groups = []
    for spec in specs:
        machine, _, path = spec.partition("=")
        groups.append((int(machine), path))
    first = True
    while not stop:
        for machine, path in groups:
            try:
                pids = open(path).read().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    stat = open(f"/proc/{pid}/stat").read()
                except OSError:
                    continue
                fields = stat[stat.rfind(")") + 2:].split()
                key = (pid, fields[19])
                ticks = int(fields[11]) + int(fields[12])
                entry = seen.get(key)
                if entry is None:
                    try:
                        cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                        cmd = [c.decode(errors="replace") for c in cmd if c]
                    except OSError:
                        cmd = []
                    # What a process had used before the job is not counted.
                    entry = seen[key] = [machine, kind_of(cmd), 0, 1, ticks if first else 0]
                entry[2] = max(entry[2], ticks - entry[4])
        first = False
        time.sleep(0.2)
    totals = {}
    for machine, kind, ticks, runs, _ in seen.values():
        t = totals.setdefault(str(machine), {}).setdefault(kind, [0.0, 0])
        t[0] += ticks / tck
        t[1] += runs
    with open(out, "w") as f:
        json.dump(totals, f)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--sample":
        sample(sys.argv[2], sys.argv[3:])
        return
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    work = sys.argv[1]
    brief = "--brief" in sys.argv[2:]
    meta = read_kv(os.path.join(work, "meta.txt"))
    base = read_kv(os.path.join(work, "baseline.txt"))
    plain = float(base["wall"])
    plain_cpu = int(base["cpu_ns"]) / 1e9
    tck = int(meta.get("clk_tck", "100"))
    plain_outside = int(base.get("box_busy_ticks", "0")) / tck - plain_cpu
    counts = [int(x) for x in meta["machines"].split()]
    runs = []
    for n in counts:
        if os.path.exists(os.path.join(work, f"run-{n}", "status.json")):
            runs.append(Run(work, n, meta))
    slots_per_machine = int(meta.get("slots", "1"))
    proj = {}
    proj_from = None
    if runs:
        proj_from = min(runs, key=lambda r: r.n)
        proj, fixed = projection(proj_from.status, slots_per_machine, counts)
    one = next((r for r in runs if r.n == 1), None)

    if not brief:
        print()
        print(f"vidshard on emulated machines, {meta.get('date', '?')}: {meta['cores']} real cores; each machine "
              f"{meta['cpu_per_machine']} core (cgroup {meta['cgroup']} quota {meta['quota_us']}/{meta['period_us']} us), "
              f"link {meta['rate']}" + (f" + {meta['delay']} delay (netem)" if meta.get("shaping") == "netem"
                                       else f" (tbf; no netem in this kernel, so no {meta['delay']} delay)")
              + f", {meta['slots']} slot(s) per node, shard_seconds {meta['shard_seconds']}")
        print(f"clip: {meta['clip_seconds']} s {meta['clip_size']} {meta['clip_fps']} fps, "
              f"{int(meta['clip_bytes']) / 1048576:.0f} MiB, {meta['clip_frames']} frames, {meta['clip_gop']}; "
              f"output {meta['out_size']} x264 {meta['preset']} crf {meta['crf']}, --no-quality, audio copied")
        print(f"baseline: plain ffmpeg in one machine's cgroup ({meta['cpu_per_machine']} core, -threads {meta['threads']}): "
              f"{plain:.1f} s wall, {plain_cpu:.1f} CPU-s ({plain_cpu / plain:.2f} cores), {base['frames']} frames; "
              f"meanwhile {plain_outside / plain:.2f} cores busy outside it")
        print("client: `vidshard upload --output` in the root namespace, outside every quota; wall = its start to the "
              "output saved; upload = until the job was created (acknowledged), download = job completed to output saved")
        print()
    head = ["machines", "wall s", "speedup", "effic.", "vs 1 node", "projected", "upload", "split",
            "encode stage", "transfers", "join", "download", "MB/machine max/mean", "shards"]
    rows = []
    for r in runs:
        speedup = plain / r.wall
        mx, mean = r.mb_moved()
        vs_one = f"{one.wall / r.wall:.2f}x" if one else "-"
        pr = proj.get(r.n)
        rows.append([
            str(r.n), fmt(r.wall), f"{speedup:.2f}x", f"{100 * speedup / r.n:.0f}%", vs_one,
            f"{pr[1]:.2f}x" if pr else "-", fmt(r.upload), fmt(r.probe_split), fmt(r.encode_stage),
            fmt(r.xfer_sum()), fmt(r.join), fmt(r.download), f"{mx:.0f}/{mean:.0f}",
            f"{len(r.shards)} on {len({s['worker'] for s in r.shards})}",
        ])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = " | ".join(h.rjust(w) for h, w in zip(head, widths))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.rjust(w) for c, w in zip(row, widths)))
    print(f"{'plain':>{widths[0]}} | {fmt(plain):>{widths[1]}} | {'1.00x':>{widths[2]}} |  (plain ffmpeg, one machine's quota)")
    if brief:
        return
    print()
    print("speedup = plain ffmpeg's wall / the run's wall; efficiency = speedup / machines; vs 1 node = the 1-machine "
          "run's wall / this one's; projected = scripts/bench.sh's projection against 1 machine, from the "
          f"{proj_from.n if proj_from else '?'}-machine run's shard encode times ({slots_per_machine} slot(s) per machine, "
          "transfers, upload and download not included); split = job start until the last shard was stored (probe included; "
          "overlaps the encodes); encode stage = plan until the last shard encoded; transfers = sum over shards of "
          "(remote wall - encode), overlapping; MB moved = bytes through each machine's link, both ways, client traffic included")
    for r in runs:
        print()
        speedup = plain / r.wall
        remote = r.remote_shards()
        local = [s for s in r.shards if s not in remote]
        video = lambda ss: sum(s["duration_seconds"] for s in ss)  # noqa: E731
        rate = lambda ss: sum(s["encode_seconds"] for s in ss) / max(1e-9, video(ss))  # noqa: E731
        master_cpu = r.cpu.get(r.master_index, 0.0)
        worker_cpus = [c for i, c in r.cpu.items() if i != r.master_index]
        sent, got = r.bytes.get(r.master_index, (0, 0))
        print(f"{r.n} machine(s): master {r.master_addr}; job {r.total:.1f} s (probe+plan {r.probe_plan:.1f}, "
              f"split done at {r.probe_split:.1f}, encode stage {r.encode_stage:.1f}, join {r.join:.1f}); "
              f"{len(r.shards)} shards of {min(s['duration_seconds'] for s in r.shards):.1f}-"
              f"{max(s['duration_seconds'] for s in r.shards):.1f} s on {r.slots} slot(s)")
        per_line = (f"   encodes: sum {r.enc_sum():.1f} s, longest {max(s['encode_seconds'] for s in r.shards):.1f} s; "
                    f"encode s per video s: master {rate(local):.2f} ({len(local)} shards)")
        if remote:
            per_line += (f", workers {rate(remote):.2f} ({len(remote)} shards); transfer per remote shard "
                         f"{r.xfer_sum() / len(remote):.2f} s mean, {max(s['transfer_seconds'] for s in remote):.2f} s max")
        print(per_line)
        lengths = {}
        for sh in r.shards:
            lengths[round(sh["duration_seconds"], 1)] = lengths.get(round(sh["duration_seconds"], 1), 0) + 1
        print("   shard lengths: " + " + ".join(f"{c} x {l:g} s" for l, c in sorted(lengths.items(), reverse=True)))
        if r.raft_timeouts:
            print(f"   Raft on the master: {r.raft_timeouts} replication/heartbeat RPCs to followers timed out during the run")
        if r.duplicates or r.failures:
            print(f"   {r.duplicates} duplicate copies (stragglers), {r.failures} failed copies")
        cap = r.wall * float(meta["cpu_per_machine"])
        line = f"   CPU used: master {master_cpu:.1f} s ({100 * master_cpu / cap:.0f}% of its quota over the wall)"
        if worker_cpus:
            wmean = sum(worker_cpus) / len(worker_cpus)
            line += f", workers mean {wmean:.1f} s ({100 * wmean / cap:.0f}%)"
        line += f"; all machines {sum(r.cpu.values()):.1f} CPU-s against plain ffmpeg's {plain_cpu:.1f}"
        print(line)
        if r.proc:
            def split_of(i):
                own, kids = r.proc.get(i, (0, 0))
                return own / tck, kids / tck
            m_own, m_kids = split_of(r.master_index)
            line = (f"   over their whole life, the node process itself (gRPC, hashing, Raft, files): master {m_own:.1f} s, "
                    f"its ffmpeg/ffprobe {m_kids:.1f} s")
            others = [split_of(i) for i in r.proc if i != r.master_index]
            if others:
                line += (f"; workers mean {sum(o for o, _ in others) / len(others):.1f} s node, "
                         f"{sum(k for _, k in others) / len(others):.1f} s ffmpeg/ffprobe")
            print(line)
        samples = os.path.join(r.dir, "cpu-by-process.json")
        if os.path.exists(samples):
            by = json.load(open(samples))
            def kinds(i):
                return {k: v for k, v in by.get(str(i), {}).items()}
            m = kinds(r.master_index)
            order = sorted(m.items(), key=lambda kv: -kv[1][0])
            text = ", ".join(f"{k} {v[0]:.1f} s ({v[1]} run{'s' if v[1] != 1 else ''})" for k, v in order if v[0] >= 0.05)
            own, kids = r.proc.get(r.master_index, (0, 0))
            sampled_kids = sum(v[0] for k, v in m.items() if k not in ("node", "reap watcher"))
            if r.proc:
                text += f"; unsampled short runs {max(0.0, kids / tck - sampled_kids):.1f} s"
            print(f"   master CPU during the job by process (sampled every 0.2 s): {text}")
            wk = {}
            workers = [i for i in r.cpu if i != r.master_index]
            for i in workers:
                for k, v in kinds(i).items():
                    wk[k] = wk.get(k, 0.0) + v[0] / len(workers)
            if wk:
                print("   each worker's CPU by process (mean): " + ", ".join(
                    f"{k} {v:.1f} s" for k, v in sorted(wk.items(), key=lambda kv: -kv[1]) if v >= 0.05))
        if "box_busy_ticks" in r.client:
            client_cpu = int(r.client.get("client_cpu_ns", "0")) / 1e9
            outside = int(r.client["box_busy_ticks"]) / tck - sum(r.cpu.values()) - client_cpu
            print(f"   client CPU {client_cpu:.1f} s; CPU used outside the machines and the client (kernel, "
                  f"anything else on the box): {outside:.1f} s, {outside / r.wall:.2f} cores on average")
            wanted = r.n * float(meta["cpu_per_machine"]) + (client_cpu + outside) / r.wall
            if wanted > 0.9 * int(meta["cores"]):
                print(f"   the box was (nearly) full: {r.n} quota(s) of {meta['cpu_per_machine']} + {(client_cpu + outside) / r.wall:.2f} "
                      f"cores of other work = {wanted:.2f} of {meta['cores']} cores, so the machines' encodes ran slower "
                      "than on idle machines (compare the workers' encode s per video s across runs)")
        print(f"   master's link: sent {sent / 1e6:.0f} MB, received {got / 1e6:.0f} MB; "
              f"per machine (MB, sent+received): " + " ".join(f"m{i}:{(a + b) / 1e6:.0f}" for i, (a, b) in sorted(r.bytes.items())))
        if r.have_log:
            S = r.slots
            print(f"   slot-time in the encode stage ({r.encode_stage:.1f} s x {S} slots = {r.encode_stage * S:.1f} s): "
                  f"busy {r.busy:.1f} (encode+transfer), idle waiting for the split {r.idle['split']:.1f}, "
                  f"idle after the split until the last assignment {r.idle['assign']:.1f}, "
                  f"idle in the tail (no shard left) {r.idle['tail']:.1f}; first shard assigned "
                  f"{(r.first_assigned - r.planned_at) if r.first_assigned else float('nan'):.1f} s after the plan, "
                  f"every machine had its first {(r.all_busy_at - r.planned_at) if r.all_busy_at else float('nan'):.1f} s after it, "
                  f"last {(r.last_assigned - r.planned_at) if r.last_assigned else float('nan'):.1f} s after it")
        # Where the time above the ideal went (seconds of wall).
        ideal = plain / r.n
        S = r.slots
        parts = [
            ("upload (client -> master" + (", then a copy to a second node before the acknowledgement)"
                                             if r.n > 1 else ", acknowledged once on disk)"), r.upload),
            ("waiting for admission", r.admission),
            ("probe and plan on the master", r.probe_plan),
            ("slots waiting for the split to write shards", r.idle["split"] / S),
            ("assignment latency (Raft write, dispatch) after the split", r.idle["assign"] / S),
            ("transfers (shard out, result back, checks)", r.xfer_sum() / S),
        ]
        over = r.enc_sum() / S - ideal
        if remote and local:
            # Workers do nothing but encode: their excess over plain ffmpeg's
            # rate is the cost of encoding in shards; the master's excess
            # over the workers' is what its other duties cost its encodes.
            contention = (rate(local) - rate(remote)) * video(local) / S
            parts += [
                ("encodes in shards slower than plain ffmpeg (ffmpeg start, per-shard checks, first GOPs)",
                 over - contention),
                ("master's encodes slowed by its other work (split, transfers, join on the same quota)", contention),
            ]
        else:
            parts.append(("encodes slower than plain ffmpeg's share (ffmpeg start, checks, the master's other work)",
                          over))
        parts += [
            ("tail: slots idle with no shard left (granularity)", r.idle["tail"] / S),
            ("join after the last encode", r.join),
            ("download (job done -> output saved)", r.download),
        ]
        accounted = sum(x for _, x in parts)
        excess = r.wall - ideal
        want = target_speedup(r.n)
        verdict = "meets" if speedup >= want else "BELOW"
        print(f"   target {want:.2f}x ({100 * want / r.n:.0f}% efficiency): {verdict}; wall {r.wall:.1f} s against the ideal "
              f"{ideal:.1f} s (plain / {r.n}): {excess:+.1f} s, of which:")
        for name, x in sorted(parts, key=lambda p: -p[1]):
            print(f"      {x:7.1f} s  {name}")
        print(f"      {excess - accounted:7.1f} s  other (rounding of the slot accounting, job bookkeeping)")
        if speedup < want:
            top = max(parts, key=lambda p: p[1])
            rounds = math.ceil(len(r.shards) / S)
            note = ""
            if rounds * S > len(r.shards) and r.idle["tail"] / S > 0.1 * excess:
                note = (f"; {len(r.shards)} shards on {S} slots take {rounds} rounds "
                        f"({len(r.shards) / S:.2f} would be even)")
            print(f"   -> the stage that ate the time at {r.n} machine(s): {top[0]}: {top[1]:.1f} s of the "
                  f"{excess:.1f} s above the ideal{note}")
    # Warnings until the output was saved (the nodes are all stopped at
    # once after it, which makes its own: no quorum for a leadership
    # transfer, replication timeouts), ids and numbers folded together.
    warned = {}
    at_stop = 0
    for r in runs:
        for i in range(1, r.n + 1):
            for at, msg, fields, level in log_events(os.path.join(r.dir, f"n{i}.log")):
                if level not in ("WARN", "ERROR") or msg.startswith("listening beyond loopback without TLS"):
                    continue
                if at > r.t1:
                    at_stop += 1
                    continue
                detail = str(fields.get("reason") or fields.get("error") or "")
                text = re.sub(r"node-[0-9a-f]+", "node-…", f"{msg}: {detail}" if detail else msg)
                text = re.sub(r"\d+", "N", text)[:200]
                warned.setdefault((level, text), []).append(f"{r.n}m/n{i}")
    print()
    print("warnings and errors in the nodes' logs until each output was saved (besides 'listening beyond loopback "
          f"without TLS'; {at_stop} more while all nodes of a run were being stopped at once):")
    for (level, text), where in sorted(warned.items(), key=lambda kv: -len(kv[1])):
        print(f"   {len(where):3d}x {level} {text}  [{' '.join(sorted(set(where))[:8])}]")
    if not warned:
        print("   none")
    if proj_from:
        print()
        print(f"projection (scripts/bench.sh's method) from the {proj_from.n}-machine run: "
              f"{fixed:.2f} s not overlapped (probe and plan, the first shard's split, join); " +
              ", ".join(f"{m} machine(s) {w:.1f} s {s:.2f}x" for m, (w, s) in sorted(proj.items())))


if __name__ == "__main__":
    main()
