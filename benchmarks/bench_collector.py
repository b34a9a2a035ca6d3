"""Recorders: ``lobfast-collect`` (C, libwebsockets) vs a Python websockets + zstandard recorder.

Both record the same loopback Binance feed (``benchmarks/datagen/ws_blast.py``: a raw-socket WebSocket
server writing pre-built frames, and the REST depth endpoint) of ``SYMBOLS`` renamed copies of the
spot BTCUSDT recording, 3 streams each (depth@100ms, trade, bookTicker: 150 streams on the
connections each recorder opens), into per-symbol zstd files.  The recorder runs pinned to core 1, the sender and this
script to core 0.  Measurements, every run in a fresh process, tools interleaved, medians:

- flat out: the sender writes every message as fast as the socket takes them; messages/s and MB/s
  of raw JSON from the first byte sent until the recorder's stats file counts them all; then its
  peak RSS (VmHWM) and CPU seconds (utime + stime) just before SIGTERM;
- paced: ``RATE_PER_SYMBOL`` msg/s per symbol in 10 ms batches; recorder CPU % over the run;
- every run: SIGTERM -> exit time, exit status 0, and zero loss: every output file decompressed,
  the WebSocket payloads recorded compared stream by stream with those sent (count, multiset of
  hashes, order); ``lobfast-collect``'s files must end with the zstd seek table's magic.

``run(quick)`` returns the raw runs, per-tool medians and ``rows`` (one dict per measurement and
tool); ``lines(result)`` is the RESULTS.md section.  Run directories (command, logs, stats; the
recorded files too when a check failed) are left in benchmarks/.data/collector_runs/.

    python benchmarks/bench_collector.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

from common import DATA, ROOT, md_table, median  # noqa: E402
from datagen.ws_blast import symbol_names, workload  # noqa: E402
from memprobe import vm_hwm  # noqa: E402

LOBFAST = "lobfast-collect"
PYREC = "Python websockets + orjson + zstandard"
COLLECT = ROOT / "lobfast" / "lobfast-collect"
PY_RECORDER = BENCH / "competitors" / "py_recorder.py"
WS_BLAST = BENCH / "datagen" / "ws_blast.py"
RUNS = DATA / "collector_runs"

SYMBOLS = 50
FLAT_PER_SYMBOL = 50_000  # 2.5 M messages, 623 MB of JSON: >= 5 s for lobfast-collect
FLAT_PER_SYMBOL_QUICK = 10_000
RATE_PER_SYMBOL = 300  # msg/s: 15,000 msg/s for 50 symbols
RATE_SECONDS, RATE_SECONDS_QUICK = 20, 10
STATS_EVERY = "100ms"
LEVEL = 3
SENDER_CORE, RECORDER_CORE = 0, 1

TARGET_MPS = 100_000
TARGET_MBPS = 50.0
TARGET_RSS_MB = 64.0
TARGET_STOP_S = 2.0
SEEK_MAGIC = 0x8F92EAB1
DRAIN_TIMEOUT_S = 180.0
STALL_S = 15.0  # no progress in the stats file for this long: the run failed


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def collector_available() -> bool:
    return COLLECT.is_file() and os.access(COLLECT, os.X_OK)


def collector_sanitized() -> bool:
    """An ASan/UBSan build (``make test-asan`` leaves one in place while it runs): its speed means nothing."""
    try:
        data = COLLECT.read_bytes()
    except OSError:
        return False
    return b"libasan.so" in data or b"libubsan.so" in data


# ------------------------------------------------------------------------------ processes
def _cores() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except AttributeError:
        return set()


def _pinned(core: int):
    """preexec_fn: the child and every thread it starts run on ``core`` (when the machine has it)."""
    if not {SENDER_CORE, RECORDER_CORE} <= _cores():
        return None
    return lambda: os.sched_setaffinity(0, {core})


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of the process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


class Sender:
    """ws_blast.py in its own process (core 0); its JSON events are read on a thread."""

    def __init__(self, messages: Path, snapshot: Path, rate: float = 0.0):
        cmd = [sys.executable, str(WS_BLAST), "--messages", str(messages), "--snapshot", str(snapshot)]
        cmd.append("--sync-start")  # connections start together, once all streams are subscribed and framed
        if rate:
            cmd += ["--rate", str(rate)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_pinned(SENDER_CORE), text=True
        )
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next_event(120.0)
        if first is None or first.get("event") != "listening":
            self.proc.kill()
            raise SystemExit(f"ws_blast did not start: {first!r} {self.proc.stderr.read()[-2000:]}")
        self.info = first
        self.ws_url = f"ws://127.0.0.1:{first['ws_port']}"
        self.rest_url = f"http://127.0.0.1:{first['rest_port']}"

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass
        self.events.put(None)

    def next_event(self, timeout: float) -> dict | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list[dict]:
        out = []
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return out
            if ev is not None:
                out.append(ev)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def recorder_cmd(tool: str, sender: Sender, symbols: list[str], out: Path, stats: Path) -> list[str]:
    exe = [str(COLLECT)] if tool == LOBFAST else [sys.executable, str(PY_RECORDER)]
    return exe + [
        "--venue",
        "spot",
        "--symbols",
        ",".join(symbols),
        "--out",
        str(out),
        "--ws-url",
        sender.ws_url,
        "--rest-url",
        sender.rest_url,
        "--stats-every",
        STATS_EVERY,
        "--stats-file",
        str(stats),
        "--level",
        str(LEVEL),
    ]


def read_stats(path: Path) -> tuple[dict, int] | None:
    """(stats object, the file's mtime in wall-clock ns) or None while there is none."""
    try:
        st = path.stat()
        return json.loads(path.read_bytes()), st.st_mtime_ns
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------ loss check
def expected_payloads(messages: Path) -> dict[bytes, list[int]]:
    """{stream: [hash of each payload, in send order]} of the workload (hash() of bytes: this process only)."""
    out: dict[bytes, list[int]] = {}
    with open(messages, "rb") as f:
        for line in f:
            p = line.rstrip(b"\n")
            stream = p[11 : p.index(b'"', 11)]
            lst = out.get(stream)
            if lst is None:
                lst = out[stream] = []
            lst.append(hash(p))
    return out


def read_zst(path: Path) -> bytes:
    import zstandard

    with open(path, "rb") as f:
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()


def check_output(out: Path, venue: str, expected: dict[bytes, list[int]], seekable: bool) -> dict:
    """Decompress every file and compare the recorded WebSocket payloads with those sent, stream by stream:
    the multiset (count and hashes: nothing lost, nothing doubled) and the order (a stream's messages come
    on one connection, so they must be recorded in the order sent)."""
    root = out / venue
    got: dict[bytes, list[int]] = {}
    problems: list[str] = []
    first_bad: dict[str, str] = {}
    counts = Counter()
    files = 0
    for d in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for path in sorted(d.glob("*.zst")):
            files += 1
            if seekable:
                with open(path, "rb") as f:
                    f.seek(-4, os.SEEK_END)
                    magic = int.from_bytes(f.read(4), "little")
                if magic != SEEK_MAGIC:
                    if not counts["files without seek table"]:
                        first_bad["seek"] = f"{path.relative_to(out)} ends with {magic:#010x}"
                    counts["files without seek table"] += 1
            try:
                data = read_zst(path)
            except Exception as e:  # noqa: BLE001 (any decoder error is a finding)
                counts["unreadable files"] += 1
                problems.append(f"{path.relative_to(out)}: {e!r}")
                continue
            if d.name.startswith("_"):
                counts["collector lines"] += data.count(b"\n")
                continue
            prefix = d.name.encode() + b"@"
            if data and not data.endswith(b"\n"):
                problems.append(f"{path.relative_to(out)}: does not end with a newline")
            for line in data.split(b"\n"):
                if not line:
                    continue
                ts, _, p = line.partition(b" ")
                if not ts.isdigit():
                    counts["malformed lines"] += 1
                elif p.startswith(b'{"stream":"'):
                    stream = p[11 : p.find(b'"', 11)]
                    if not stream.startswith(prefix):
                        counts["misrouted"] += 1
                    lst = got.get(stream)
                    if lst is None:
                        lst = got[stream] = []
                    lst.append(hash(p))
                elif p.startswith(b'{"lastUpdateId"'):
                    counts["snapshot lines"] += 1
                elif p.startswith(b'{"lobfast"'):
                    counts["event lines"] += 1
                else:
                    counts["other lines"] += 1
    if counts["files without seek table"]:
        problems.append(
            f"{counts['files without seek table']} of {files} files without the seek table (e.g. {first_bad['seek']})"
        )
    missing = extra = 0
    in_order = True
    differ = []
    for stream in sorted(set(expected) | set(got)):
        e, g = expected.get(stream, []), got.get(stream, [])
        if e == g:
            continue
        in_order = False
        ce, cg = Counter(e), Counter(g)
        m, x = sum((ce - cg).values()), sum((cg - ce).values())
        missing += m
        extra += x
        if m or x:
            differ.append(f"{stream.decode()}: {len(g):,} recorded, {len(e):,} sent")
    if differ:
        problems.append(
            f"{len(differ)} of {len(expected)} streams not recorded exactly once: {missing:,} messages missing, "
            f"{extra:,} extra (e.g. {'; '.join(differ[:2])})"
        )
    elif not in_order:
        problems.append("every message recorded once, but not in the order sent within a stream")
    if counts["misrouted"]:
        problems.append(f"{counts['misrouted']:,} messages in another symbol's file")
    recorded = sum(len(g) for g in got.values())
    return {
        "files": files,
        "recorded": recorded,
        "missing": missing,
        "extra": extra,
        "zero_loss": missing == 0 and extra == 0 and not counts["misrouted"] and not counts["unreadable files"],
        "seek_tables": not counts["files without seek table"],
        "in_order": in_order,
        "counts": dict(counts),
        "problems": problems,
    }


# ------------------------------------------------------------------------------ one run
def record_once(tool: str, sender: Sender, symbols: list[str], expected: dict, run_dir: Path) -> dict:
    """Start the recorder, wait until it has recorded every message, sample it, SIGTERM it, check its files."""
    total = sum(len(v) for v in expected.values())
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    out, stats = run_dir / "out", run_dir / "stats.json"
    cmd = recorder_cmd(tool, sender, symbols, out, stats)
    (run_dir / "cmd.txt").write_text(" ".join(cmd) + "\n")
    sender.drain()
    r: dict = {"tool": tool, "messages": total, "error": None}
    with open(run_dir / "stdout.log", "wb") as so, open(run_dir / "stderr.log", "wb") as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, preexec_fn=_pinned(RECORDER_CORE))
    events: list[dict] = []
    start = bad = None
    try:
        # the sender's first frame
        deadline = time.monotonic() + 60
        while start is None and time.monotonic() < deadline and proc.poll() is None:
            ev = sender.next_event(0.05)
            if ev is not None:
                events.append(ev)
                if ev.get("event") == "start":
                    start = ev
                elif ev.get("event") == "bad_request" and bad is None:
                    bad = ev
                    deadline = min(deadline, time.monotonic() + 5)
        if start is None:
            if bad is not None:
                raise RuntimeError(f"the server answered 400 to its handshake ({bad['why']}: {bad['request_line']!r})")
            raise RuntimeError("no WebSocket connection within 60 s" if proc.poll() is None else "exited early")
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        sender_cpu0 = cpu_seconds(sender.proc.pid)
        # until the stats file counts every message (or stops moving for STALL_S)
        deadline = t0 + DRAIN_TIMEOUT_S
        done = None
        last, last_change = -1, t0
        while time.monotonic() < deadline and proc.poll() is None:
            s = read_stats(stats)
            n = s[0].get("messages", 0) if s is not None else 0
            if n >= total:
                done = s
                break
            if n != last:
                last, last_change = n, time.monotonic()
            elif time.monotonic() - last_change > STALL_S:
                break
            time.sleep(0.005)
        if done is None:
            s = read_stats(stats)
            raise RuntimeError(
                f"stats count {s[0].get('messages') if s else 'no stats file'} of {total:,} messages"
                if proc.poll() is None
                else f"exited (status {proc.returncode}) before recording every message"
            )
        (user, system), t1 = cpu_times(proc.pid), time.monotonic()
        cpu1 = user + system
        r["cpu_user_s"], r["cpu_sys_s"] = user, system
        r["sender_cpu_s"] = cpu_seconds(sender.proc.pid) - sender_cpu0
        r["hwm"] = vm_hwm(proc.pid) or 0
        r["cpu_s"] = cpu1
        r["cpu_window_s"] = cpu1 - cpu0
        r["window_s"] = t1 - t0
        r["seconds"] = (done[1] - start["wall"]) / 1e9  # first frame -> stats file showing all of them
        r["stats_messages"] = done[0].get("messages")
        r["stats_bytes"] = done[0].get("bytes")
        ts = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            r["returncode"] = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            r["returncode"] = proc.wait()
            r["error"] = "still running 10 s after SIGTERM (killed)"
        r["stop_s"] = time.monotonic() - ts
    except BaseException as e:
        if not isinstance(e, RuntimeError):
            proc.kill()
            proc.wait()
            raise
        r["error"] = str(e)
        if proc.poll() is None:  # stop it the normal way, so that its files can still be checked
            r["hwm"] = vm_hwm(proc.pid) or 0
            ts = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
                r["stop_s"] = time.monotonic() - ts
            except subprocess.TimeoutExpired:
                proc.kill()
                r["error"] += "; still running 10 s after SIGTERM (killed)"
        r["returncode"] = proc.wait()
    time.sleep(0.05)
    events += sender.drain()
    r["connections"] = sum(1 for ev in events if ev.get("event") == "connected")
    r["streams_requested"] = sum(ev["streams"] - ev["unknown"] for ev in events if ev.get("event") == "connected")
    r["bad_requests"] = [ev for ev in events if ev.get("event") == "bad_request"]
    r["rest_requests"] = sum(1 for ev in events if ev.get("event") == "rest")
    r["sender_errors"] = [ev for ev in events if ev.get("event") == "error"]
    r["payload_bytes"] = sum(ev["payload_bytes"] for ev in events if ev.get("event") == "connected")
    if r["returncode"] not in (0, None) and r["error"] is None:
        r["error"] = f"exit status {r['returncode']}"
    if r["error"]:
        r["stderr_tail"] = (run_dir / "stderr.log").read_bytes()[-2000:].decode(errors="replace")
    r["check"] = check_output(out, "spot", expected, seekable=tool == LOBFAST)
    if r["streams_requested"] < len(expected) and start is not None:
        r["check"]["problems"].append(f"subscribed to {r['streams_requested']} of {len(expected)} streams")
    for ev in r["sender_errors"][:3]:
        r["check"]["problems"].append(f"sender: connection {ev.get('conn')}: {ev.get('error')}")
    if not r["error"] and not r["check"]["problems"]:
        shutil.rmtree(out)  # checked; the logs and stats stay (a failed run keeps its files too)
    return r


def _describe(r: dict) -> str:
    c = r["check"]
    if r["error"]:
        return f"{r['tool']}: ERROR {r['error']}"
    return (
        f"{r['tool']}: {r['messages'] / r['seconds']:,.0f} msg/s, {r['seconds']:.2f} s, "
        f"CPU {r['cpu_window_s']:.2f} s over {r['window_s']:.2f} s, RSS {r['hwm'] / 2**20:.1f} MiB, "
        f"stop {r['stop_s']:.2f} s, rc {r['returncode']}, sender CPU {r['sender_cpu_s']:.2f} s, loss check "
        + ("ok" if c["zero_loss"] else f"FAILED ({c['missing']} missing, {c['extra']} extra)")
        + ("" if c["in_order"] else ", out of order")
    )


def measure(tools: list[str], rounds: int, per_symbol: int, rate: float, label: str) -> dict:
    symbols = symbol_names(SYMBOLS)
    messages, snapshot = workload(SYMBOLS, per_symbol)
    expected = expected_payloads(messages)
    sender = Sender(messages, snapshot, rate)
    runs: dict[str, list[dict]] = {t: [] for t in tools}
    try:
        for i in range(rounds):
            order = tools[i % len(tools) :] + tools[: i % len(tools)]
            for tool in order:
                tag = "lobfast" if tool == LOBFAST else "python"
                r = record_once(tool, sender, symbols, expected, RUNS / f"{label}-{tag}-{i}")
                log(f"  {label} round {i + 1}: {_describe(r)}")
                runs[tool].append(r)
    finally:
        sender.stop()
    return {
        "label": label,
        "symbols": SYMBOLS,
        "streams": SYMBOLS * 3,
        "messages": sender.info["messages"],
        "payload_bytes": sender.info["payload_bytes"],
        "rate": rate,
        "rounds": rounds,
        "runs": runs,
    }


def summarize(m: dict) -> dict[str, dict]:
    """Medians per tool over its successful runs; loss and errors over all runs."""
    out = {}
    for tool, runs in m["runs"].items():
        ok = [r for r in runs if not r["error"]]
        s = {
            "runs": len(runs),
            "ok_runs": len(ok),
            "errors": [r["error"] for r in runs if r["error"]],
            "zero_loss": all(r["check"]["zero_loss"] for r in runs),
            "in_order": all(r["check"]["in_order"] for r in runs),
            "seek_tables": all(r["check"]["seek_tables"] for r in runs),
            "problems": [p for r in runs for p in r["check"]["problems"]][:10],
            "missing": sum(r["check"]["missing"] for r in runs),
            "extra": sum(r["check"]["extra"] for r in runs),
            "connections": sorted({r["connections"] for r in runs}),
            "rest_requests": median([r["rest_requests"] for r in runs]),
            "snapshot_lines": median([r["check"]["counts"].get("snapshot lines", 0) for r in runs]),
            "event_lines": median([r["check"]["counts"].get("event lines", 0) for r in runs]),
        }
        if ok:
            s["seconds"] = median([r["seconds"] for r in ok])
            s["mps"] = median([m["messages"] / r["seconds"] for r in ok])
            s["mbps"] = median([m["payload_bytes"] / r["seconds"] / 1e6 for r in ok])
            s["cpu_s"] = median([r["cpu_s"] for r in ok])
            s["cpu_user_s"] = median([r["cpu_user_s"] for r in ok])
            s["cpu_sys_s"] = median([r["cpu_sys_s"] for r in ok])
            s["cpu_window_s"] = median([r["cpu_window_s"] for r in ok])
            s["cpu_pct"] = median([100 * r["cpu_window_s"] / r["window_s"] for r in ok])
            s["hwm_mb"] = median([r["hwm"] / 2**20 for r in ok])
            s["hwm_max_mb"] = max(r["hwm"] / 2**20 for r in ok)
            s["stop_s"] = median([r["stop_s"] for r in ok])
            s["stop_max_s"] = max(r["stop_s"] for r in ok)
            s["sender_cpu_pct"] = median([100 * r["sender_cpu_s"] / r["window_s"] for r in ok])
        out[tool] = s
    return out


# ------------------------------------------------------------------------------ entry point
def run(quick: bool = False, rounds: int | None = None) -> dict:
    """Flat-out throughput and paced CPU of each recorder; see the module docstring."""
    tools = ([LOBFAST] if collector_available() else []) + [PYREC]
    sanitized = collector_available() and collector_sanitized()
    if sanitized:
        log("warning: lobfast/lobfast-collect is a sanitizer build; rebuild it (make build) for real numbers")
    rounds = rounds or (1 if quick else 3)
    flat_n = FLAT_PER_SYMBOL_QUICK if quick else FLAT_PER_SYMBOL
    secs = RATE_SECONDS_QUICK if quick else RATE_SECONDS
    RUNS.mkdir(parents=True, exist_ok=True)
    me = _cores()
    if {SENDER_CORE, RECORDER_CORE} <= me:
        os.sched_setaffinity(0, {SENDER_CORE})
    t0 = time.perf_counter()
    try:
        log(f"recorders: flat out, {SYMBOLS} symbols x {flat_n:,} messages ({rounds} rounds)")
        flat = measure(tools, rounds, flat_n, 0.0, "flat")
        per_symbol = RATE_PER_SYMBOL * secs
        log(f"recorders: paced, {SYMBOLS * RATE_PER_SYMBOL:,} msg/s for {secs} s ({rounds} rounds)")
        paced = measure(tools, rounds, per_symbol, float(SYMBOLS * RATE_PER_SYMBOL), "paced")
    finally:
        if me:
            os.sched_setaffinity(0, me)
    flat_s, paced_s = summarize(flat), summarize(paced)
    rows = [
        {"measurement": name, "tool": tool, **{k: v for k, v in s.items() if not isinstance(v, list)}}
        for name, summ in (("flat", flat_s), ("paced", paced_s))
        for tool, s in summ.items()
    ]
    return {
        "tools": tools,
        "rows": rows,
        "collector": collector_available(),
        "sanitized": sanitized,
        "pinned": {SENDER_CORE, RECORDER_CORE} <= me,
        "flat": flat,
        "paced": paced,
        "flat_summary": flat_s,
        "paced_summary": paced_s,
        "elapsed_s": time.perf_counter() - t0,
    }


def _ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def _loss(s: dict) -> str:
    if s["zero_loss"]:
        text = "yes" if s["in_order"] else "yes, **reordered**"
    else:
        text = f"**no** ({s['missing']:,} missing, {s['extra']:,} extra over {s['runs']} runs)"
    return text


def _seek(tool: str, s: dict) -> str:
    if tool != LOBFAST:
        return "n/a"
    return "yes" if s["seek_tables"] else "**no**"


def tables(res: dict) -> tuple[str, str]:
    flat, paced = res["flat_summary"], res["paced_summary"]
    rows = []
    base = flat.get(LOBFAST, {}).get("mps")
    for tool, s in flat.items():
        runs = f"{s['ok_runs']}/{s['runs']}"
        conns = "/".join(map(str, s["connections"]))
        if not s["ok_runs"]:
            rows.append([tool, runs, conns, "failed (below)", "", "", "", "", "", _loss(s), _seek(tool, s), "", ""])
            continue
        rows.append(
            [
                tool,
                runs,
                conns,
                f"{s['mps']:,.0f}",
                f"{s['mbps']:,.1f}",
                f"{s['seconds']:.2f}",
                f"{s['cpu_s']:.2f} ({s['cpu_user_s']:.2f} + {s['cpu_sys_s']:.2f})",
                f"{s['hwm_mb']:.1f}",
                f"{s['stop_max_s']:.2f}",
                _loss(s),
                _seek(tool, s),
                "1.0" if tool == LOBFAST else (f"{base / s['mps']:.1f}x" if base else "n/a"),
                f"{s['sender_cpu_pct']:.0f}",
            ]
        )
    t1 = md_table(
        [
            "recorder",
            "runs ok",
            "conns",
            "messages/s",
            "MB/s of JSON",
            "seconds",
            "CPU s, whole process (user + sys)",
            "peak RSS MiB",
            "SIGTERM -> exit s (max)",
            "every message recorded once",
            "seek tables",
            "lobfast's speed-up",
            "sender CPU % (core 0)",
        ],
        rows,
    )
    rows = []
    rate = res["paced"]["rate"]
    for tool, s in paced.items():
        runs = f"{s['ok_runs']}/{s['runs']}"
        if not s["ok_runs"]:
            rows.append([tool, runs, "failed (below)", "", "", "", _loss(s), _seek(tool, s)])
            continue
        rows.append(
            [
                tool,
                runs,
                f"{s['cpu_pct']:.1f}",
                f"{s['cpu_pct'] / (rate / 1000):.2f}",
                f"{s['hwm_mb']:.1f}",
                f"{s['stop_max_s']:.2f}",
                _loss(s),
                _seek(tool, s),
            ]
        )
    t2 = md_table(
        [
            "recorder",
            "runs ok",
            "CPU % of one core",
            "CPU % per 1,000 msg/s",
            "peak RSS MiB",
            "SIGTERM -> exit s (max)",
            "every message recorded once",
            "seek tables",
        ],
        rows,
    )
    return t1, t2


def findings(res: dict) -> list[str]:
    """Errors and failed checks, one line each (deduplicated)."""
    out: list[str] = []
    for key, name in (("flat", "flat out"), ("paced", "paced")):
        for tool, runs in res[key]["runs"].items():
            seen = set()
            for r in runs:
                items = ([r["error"]] if r["error"] else []) + r["check"]["problems"][:5]
                if r["returncode"] not in (0, None):
                    items.append(f"exit status {r['returncode']}; stderr ends: {r.get('stderr_tail', '')[-300:]!r}")
                for item in items:
                    key = re.sub(r"[\d,]+", "#", item)  # the same finding with other counts
                    if key not in seen:
                        seen.add(key)
                        out.append(f"- {name}, {tool}: {item}".replace("|", "\\|"))
    return out


def lines(res: dict) -> list[str]:
    flat, paced = res["flat"], res["paced"]
    t1, t2 = tables(res)
    out = [
        "",
        "## Recorder: `lobfast-collect` vs a Python websockets recorder",
        "",
        "- Feed (`benchmarks/datagen/ws_blast.py`, its own process on core 0): "
        f"{flat['symbols']} renamed copies of the "
        f"spot BTCUSDT recording (`s001usdt`..., sequence ids continuous per symbol), {flat['streams']} streams "
        "(depth@100ms, trade, bookTicker), interleaved round robin, on the combined-stream connections each recorder "
        "opens (column `conns`: at most 200 streams each, and lobfast-collect also keeps each URL under ~1.9 KiB); "
        "a raw-socket "
        "WebSocket server (no permessage-deflate) writing pre-built unmasked frames in ~1 MiB `sendall` slices, "
        "and the REST depth endpoint returning the recording's snapshot.",
        f"- `lobfast-collect --venue spot --symbols ... --stats-every {STATS_EVERY} --level {LEVEL}` vs "
        f"`benchmarks/competitors/py_recorder.py`: websockets {_version('websockets')} asyncio client, "
        "`recv(decode=False)`, "
        f"`orjson.loads(msg)['stream']` to route, `b'%d %b\\n' % (time.time_ns(), msg)` into a per-symbol "
        f"zstandard {_version('zstandard')} stream writer (level {LEVEL}), one depth snapshot per symbol at start.  "
        "Same files, same stats file.",
        "- Recorder pinned to core 1"
        + ("" if res["pinned"] else " (not pinned: fewer than 2 cores)")
        + f"; a fresh process per run; {flat['rounds']} interleaved rounds; medians.",
        "- Every message recorded once: after SIGTERM every output file is decompressed and, stream by stream, the "
        'recorded WebSocket payloads (lines `<ns> {"stream":...}`) are compared with those sent: count, multiset '
        "of hashes, order.  lobfast-collect's files must end with the zstd seek table's magic (0x8F92EAB1).",
        "",
        f"### Flat out: {flat['messages']:,} messages, {flat['payload_bytes'] / 1e6:,.0f} MB of JSON",
        "",
        "From the sender's first frame until the recorder's stats file (rewritten every "
        f"{STATS_EVERY}) counts every message; CPU and peak RSS (VmHWM) read just before SIGTERM.",
        "",
        t1,
        "",
    ]
    s = res["flat_summary"].get(LOBFAST)
    if res.get("sanitized"):
        out += ["**lobfast-collect was an ASan/UBSan build in this run: its numbers are not representative.**", ""]
    if s and s["ok_runs"]:
        out.append(
            f"Targets (lobfast-collect, one core): >= {TARGET_MPS:,} messages/s {_ok(s['mps'] >= TARGET_MPS)}; "
            f">= {TARGET_MBPS:g} MB/s {_ok(s['mbps'] >= TARGET_MBPS)}; zero loss {_ok(s['zero_loss'])}; "
            f"peak RSS <= {TARGET_RSS_MB:g} MB {_ok(s['hwm_max_mb'] * 2**20 / 1e6 <= TARGET_RSS_MB)}; "
            f"exit within {TARGET_STOP_S:g} s of SIGTERM {_ok(s['stop_max_s'] < TARGET_STOP_S)}."
        )
    elif s:
        out.append("Targets (lobfast-collect): **not met**: no run completed (below).")
    else:
        out.append("lobfast-collect was not run: `lobfast/lobfast-collect` is not built (`make build`).")
    out += [
        "",
        f"### Paced: {paced['rate']:,.0f} msg/s ({RATE_PER_SYMBOL} per symbol) for "
        f"{paced['messages'] / paced['rate']:.0f} s",
        "",
        "CPU seconds of the recorder between the first frame and the last message counted, over that wall time.",
        "",
        t2,
    ]
    problems = findings(res)
    if problems:
        out += ["", "### Problems found", ""] + problems
    return out


def _version(mod: str) -> str:
    try:
        return __import__(mod).__version__
    except ImportError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 round, smaller flat-out input, 10 s paced")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()
    res = run(quick=args.quick, rounds=args.rounds)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    print("\n".join(lines(res)))
    log(f"total {res['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
