"""reconstruct(BookSnapshots, every=...): snapshots (Tardis book_snapshot_N) resampled to a
grid, against a plain NumPy loop."""

from __future__ import annotations

import numpy as np
import pytest

import lobfast
from lobfast import BookSnapshots


def _snapshots(rng, n: int, levels: int, sort: bool) -> BookSnapshots:
    ts = rng.integers(10**12, 10**12 + 50 * 10**9, n)
    ts[rng.random(n) < 0.2] = ts[0]  # ties
    if sort:
        ts.sort()
    px = rng.normal(100, 1, (n, levels))
    px[rng.random((n, levels)) < 0.1] = np.nan
    return BookSnapshots(
        ts=ts,
        update_id=np.arange(n, dtype=np.int64),
        bid_px=px,
        bid_sz=rng.random((n, levels)),
        ask_px=px + 1,
        ask_sz=rng.random((n, levels)),
        valid=rng.random(n) < 0.9,
    )


def _loop(s: BookSnapshots, levels: int, every: int, max_stale: int | None) -> dict[str, np.ndarray]:
    """The last snapshot (by time; the last given of equal times) at or before each grid time."""
    first, last = s.ts.min(), s.ts.max()
    grid = np.arange(-(-first // every) * every, last // every * every + 1, every)
    rows, valid = [], []
    for g in grid:
        best = None
        for i in range(len(s)):
            if s.ts[i] <= g and (best is None or s.ts[i] >= s.ts[best]):
                best = i
        rows.append(best)
        valid.append(bool(s.valid[best]) and (max_stale is None or g - s.ts[best] <= max_stale))
    rows = np.array(rows)
    out = {"ts": grid, "update_id": s.update_id[rows], "valid": np.array(valid, bool)}
    for side in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        out[side] = getattr(s, side)[rows, :levels]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_grid_equals_a_plain_loop(seed):
    rng = np.random.default_rng(seed)
    s = _snapshots(rng, int(rng.integers(1, 200)), 6, sort=seed % 2 == 0)
    every = int(rng.choice([10**8, 10**9, 3 * 10**9]))
    max_stale = None if seed % 3 == 0 else 2 * 10**9
    got = lobfast.reconstruct(s, levels=4, every=every, max_stale=max_stale)
    want = _loop(s, 4, every, max_stale)
    assert set(got.columns) == set(want)
    for name, a in want.items():
        np.testing.assert_array_equal(got.columns[name], a, err_msg=name)


def test_no_grid_keeps_each_snapshot_in_time_order_and_cuts_levels():
    s = _snapshots(np.random.default_rng(9), 50, 6, sort=False)
    got = lobfast.reconstruct(s, levels=2)
    order = np.argsort(s.ts, kind="stable")
    np.testing.assert_array_equal(got.ts, s.ts[order])
    np.testing.assert_array_equal(got.bid_px, s.bid_px[order, :2])
    assert got.levels == 2


def test_too_few_levels_bad_times_and_event_options_are_refused():
    s = _snapshots(np.random.default_rng(1), 10, 3, sort=True)
    with pytest.raises(ValueError, match="the snapshots hold 3 levels per side, fewer than levels=5"):
        lobfast.reconstruct(s, levels=5, every="1s")
    with pytest.raises(ValueError, match="crossed= and orphans= apply to DepthEvents"):
        lobfast.reconstruct(s, levels=3, every="1s", crossed="repair")
    bad = BookSnapshots(**{**s.columns, "ts": np.where(np.arange(10) == 4, np.iinfo(np.int64).min, s.ts)})
    with pytest.raises(ValueError, match=r"BookSnapshots ts\[4\] = -9223372036854775808 is not a time"):
        lobfast.reconstruct(bad, levels=3, every="1s")
    empty = lobfast.reconstruct(BookSnapshots.empty(), levels=3, every="1s")
    assert len(empty) == 0
