"""Peak memory of one reader, run in a fresh interpreter by common.peak_memory.

    python benchmarks/memprobe.py TOOL CHUNK_ROWS PATH [PATH ...]

TOOL: lobfast | lobfast-iter | loop | msgspec | orjson.  Prints one JSON line: the RSS after
imports, the peak RSS while reading (VmHWM, which is ru_maxrss of this address space, after
resetting the high-water mark where Linux allows it), their difference, and the bytes of
the output arrays.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import numpy as np  # noqa: E402, F401
from common import output_bytes  # noqa: E402
from competitors import binance_fast, binance_loop  # noqa: E402

import lobfast  # noqa: E402


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def vm_hwm(pid: int | str = "self") -> int | None:
    """Peak RSS of a process's address space (VmHWM), or None where /proc has none.

    The same high-water mark as ``ru_maxrss``, but ``ru_maxrss`` also keeps the peak of the
    process image before ``exec`` -- for a child of a big benchmark process, the parent's
    RSS at fork time -- so it cannot be reset for a fresh measurement."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_hwm() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main() -> None:
    tool, chunk_rows, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    gc.collect()
    base = rss_now()
    reset = reset_hwm()  # the peak RSS restarts from the current RSS: imports do not count
    chunks = 0
    largest_chunk = 0
    if tool == "lobfast":
        out = lobfast.read_binance(paths)
        out_bytes = output_bytes(out)
    elif tool == "lobfast-iter":
        out_bytes = 0
        for md in lobfast.iter_binance(paths, chunk_rows=chunk_rows):
            b = output_bytes(md)
            out_bytes += b
            largest_chunk = max(largest_chunk, b)
            chunks += 1
            del md  # a consumer that keeps a summary, not the rows
    else:
        read = {"loop": binance_loop.read, **binance_fast.ROUTES}[tool]
        if len(paths) != 1:
            raise SystemExit("the baselines read one file")
        out = read(paths[0])
        out_bytes = output_bytes(out)
    peak = vm_hwm()
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "tool": tool,
                "rss_after_imports": base,
                "peak_rss": peak,
                "peak_extra": max(0, peak - base),
                "output_bytes": out_bytes,
                "chunks": chunks,
                "largest_chunk_bytes": largest_chunk,
                "hwm_reset": reset,
            }
        )
    )


if __name__ == "__main__":
    main()
