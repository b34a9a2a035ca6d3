"""Real sample recordings shipped with lobfast (see lobfast/data/README.md for their origin)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"

SAMPLES = {
    "spot_btcusdt_20240808": "spot_btcusdt_20240808.gz",
    "spot_btcusdt_20240809": "spot_btcusdt_20240809.gz",
    "usdm_btcusdt_20240808": "usdm_btcusdt_20240808.gz",
}

DEMO_SETS = [
    (
        "Binance spot BTCUSDT, two files read as one stream",
        ["spot_btcusdt_20240808", "spot_btcusdt_20240809"],
    ),
    ("Binance USD-M futures BTCUSDT", ["usdm_btcusdt_20240808"]),
]


def path(name: str) -> Path:
    """Path of a bundled sample, e.g. ``path("spot_btcusdt_20240808")``."""
    if name not in SAMPLES:
        raise KeyError(f"no sample {name!r}; available: {', '.join(SAMPLES)}")
    return DATA_DIR / SAMPLES[name]
