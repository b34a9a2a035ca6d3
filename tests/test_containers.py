"""Containers: validation, conversions (zero-copy where promised), Parquet round trips."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SPOT_BTC_0808

import lobfast
from lobfast import BookSnapshots, DepthEvents, Quotes, Trades


@pytest.fixture(scope="module")
def md():
    return lobfast.read_binance(SPOT_BTC_0808)


def test_build_by_keyword_and_validate():
    t = Trades(ts=[1, 2], local_ts=[3, 4], price=[1.5, 2.5], qty=[1, 2], side=[1, -1], trade_id=[7, 8])
    assert len(t) == 2 and t.qty.dtype == np.float64 and t.side.dtype == np.int8
    with pytest.raises(TypeError, match=r"missing \['trade_id'\]"):
        Trades(ts=[1], local_ts=[1], price=[1.0], qty=[1.0], side=[1])
    with pytest.raises(TypeError, match=r"unexpected \['foo'\]"):
        Trades(ts=[1], local_ts=[1], price=[1.0], qty=[1.0], side=[1], trade_id=[1], foo=[1])
    with pytest.raises(ValueError, match="different lengths"):
        Trades(ts=[1, 2], local_ts=[1], price=[1.0], qty=[1.0], side=[1], trade_id=[1])
    with pytest.raises(TypeError, match="column 'ts' must be int64, got float64"):
        Trades(ts=[1.5], local_ts=[1], price=[1.0], qty=[1.0], side=[1], trade_id=[1])
    with pytest.raises(ValueError, match=r"column 'side' holds values outside int8 \(-1..300\)"):
        Trades(ts=[1, 2], local_ts=[1, 2], price=[1.0, 1.0], qty=[1.0, 1.0], side=[-1, 300], trade_id=[1, 2])
    with pytest.raises(ValueError, match="must be 1-D"):
        Trades(ts=[[1]], local_ts=[1], price=[1.0], qty=[1.0], side=[1], trade_id=[1])
    # datetime64 times become int64 ns
    t = Trades(
        ts=np.array(["2024-08-08T00:00:00"], "datetime64[ms]"),
        local_ts=[0],
        price=[1.0],
        qty=[1.0],
        side=[1],
        trade_id=[1],
    )
    assert t.ts[0] == 1723075200 * 10**9


def test_times_only_in_time_columns_and_rows_by_slice(md):
    with pytest.raises(TypeError, match="column 'trade_id' must be int64, got datetime64"):
        Trades(ts=[1], local_ts=[1], price=[1.0], qty=[1.0], side=[1], trade_id=np.array([1], "datetime64[s]"))
    with pytest.raises(TypeError, match=r"for one row use \[0:1\]"):
        md.trades[0]
    assert len(md.trades[0:1]) == 1


def test_exact_dtypes_are_not_copied(md):
    d = DepthEvents(**md.depth.columns)
    for name, a in md.depth.columns.items():
        assert d.columns[name] is a


def test_pandas_polars_arrow(md):
    df = md.depth.to_pandas()
    assert list(df.columns) == ["ts", "local_ts", "side", "price", "qty", "update_id", "flags"]
    assert str(df["ts"].dtype).startswith("datetime64[ns")
    assert np.shares_memory(df["qty"].to_numpy(), md.depth.qty)
    pl_df = md.trades.to_polars()
    assert pl_df.height == len(md.trades) and str(pl_df.schema["ts"]).startswith("Datetime")
    tbl = md.quotes.to_arrow()
    assert tbl.num_rows == len(md.quotes) and str(tbl.schema.field("ts").type) == "timestamp[ns, tz=UTC]"


@pytest.mark.parametrize("name", ["depth", "trades", "quotes"])
def test_parquet_round_trip(md, tmp_path, name):
    c = getattr(md, name)
    c.to_parquet(tmp_path / f"{name}.parquet")
    back = type(c).read_parquet(tmp_path / f"{name}.parquet")
    for col, a in c.columns.items():
        assert np.array_equal(back.columns[col], a, equal_nan=True), col


def test_slicing_and_time_window(md):
    t = md.trades
    part = t[10:20]
    assert len(part) == 10 and np.shares_memory(part.price, t.price)
    w = t.between(int(t.ts[10]), int(t.ts[20]))
    assert w.ts[0] == t.ts[10] and w.ts[-1] < t.ts[20]
    buys = t[t.side == 1]
    assert np.all(buys.side == 1)
    assert "Trades(9757 rows, 2024-08-08" in repr(t)


def test_book_snapshots_deeplob_order():
    n, L = 3, 2
    rng = np.random.default_rng(1)
    b = BookSnapshots(
        ts=np.arange(n),
        update_id=np.arange(n),
        bid_px=rng.random((n, L)),
        bid_sz=rng.random((n, L)),
        ask_px=rng.random((n, L)),
        ask_sz=rng.random((n, L)),
        valid=np.ones(n, bool),
    )
    x = b.to_deeplob()
    assert x.shape == (n, 4 * L) and x.dtype == np.float32
    for lvl in range(L):
        np.testing.assert_array_equal(x[:, 4 * lvl + 0], b.ask_px[:, lvl].astype(np.float32))
        np.testing.assert_array_equal(x[:, 4 * lvl + 1], b.ask_sz[:, lvl].astype(np.float32))
        np.testing.assert_array_equal(x[:, 4 * lvl + 2], b.bid_px[:, lvl].astype(np.float32))
        np.testing.assert_array_equal(x[:, 4 * lvl + 3], b.bid_sz[:, lvl].astype(np.float32))
    with pytest.raises(ValueError, match="different shapes"):
        BookSnapshots(
            ts=[0],
            update_id=[0],
            bid_px=np.zeros((1, 2)),
            bid_sz=np.zeros((1, 3)),
            ask_px=np.zeros((1, 2)),
            ask_sz=np.zeros((1, 2)),
            valid=[True],
        )
    df = b.to_pandas()
    assert "ask_px_2" in df.columns


def test_empty_containers():
    for cls in (DepthEvents, Trades, Quotes, BookSnapshots):
        e = cls.empty()
        assert len(e) == 0
        assert len(e.to_pandas()) == 0


def test_flags_mirror_the_core():
    assert int(lobfast.Flags.GAP) == lobfast._core.FLAG_GAP == 4
    assert lobfast.Flags(3) == lobfast.Flags.SNAPSHOT | lobfast.Flags.RESET
