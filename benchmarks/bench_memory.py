"""Peak memory: each reader in a fresh interpreter (memprobe.py), peak extra RSS vs output size.

lobfast's own working set beyond its output is one text buffer (LOB_BUF_INIT, 1 MiB in
csrc/core/io/reader.c) plus one compressed-input buffer (LOB_IN_CHUNK, 256 KiB in
csrc/core/io/source.c): that is the "one chunk" of the target "peak <= 1.5 x output + one chunk".
"""

from __future__ import annotations

from bench_binance import DATASETS
from common import peak_memory, plain_copy

CHUNK_BYTES = (1 << 20) + (1 << 18)
TOOLS = {
    "lobfast": "lobfast",
    "loop": "(a) json.loads loop",
    "msgspec": "(b) msgspec Structs",
    "orjson": "(b) orjson dicts",
}
ITER_CHUNK_ROWS = 65_536


def peak_per_tool(name: str) -> dict:
    label, stem = DATASETS[name]
    path = plain_copy(stem)
    return {
        "dataset": label,
        "bytes": path.stat().st_size,
        "tools": {TOOLS[t]: peak_memory(t, [path]) for t in TOOLS},
    }


def bounded() -> list[dict]:
    """read_binance vs iter_binance(chunk_rows) on one file and on a two-file day pair."""
    cases = [
        ("USD-M BTCUSDT 2024-08-08", ["usdm_btcusdt_20240808"]),
        ("spot BTCUSDT 2024-08-08 + 09 (2 files)", ["spot_btcusdt_20240808", "spot_btcusdt_20240809"]),
    ]
    out = []
    for label, stems in cases:
        paths = [plain_copy(s) for s in stems]
        out.append(
            {
                "dataset": label,
                "bytes": sum(p.stat().st_size for p in paths),
                "read": peak_memory("lobfast", paths),
                "iter": peak_memory("lobfast-iter", paths, ITER_CHUNK_ROWS),
            }
        )
    return out
