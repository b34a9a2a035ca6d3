"""TimeIndex over CSV files: every window equals pandas.read_csv of the whole file, filtered.

The reference reads the file with pandas (every cell as text), converts each cell with plain
Python (Decimal for times, float() for numbers) and keeps ``start <= time < end``.  Files are
the real Binance depth of tests/data rewritten as Tardis-style CSV, and synthetic ones for
what the real data lacks (fractions of seconds, headerless files, empty cells, CRLF, blank
lines, damaged compression).  Hypothesis draws random files, compressions and windows.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
import warnings
import zlib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SPOT_BTC_0808, interrupted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lobfast
from lobfast import LobError, LobWarning, TimeIndex, sidecar
from lobfast.timeindex import sidecar_path

needs_zstd = pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command")

UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
SIDES = {"buy": 1, "bid": 1, "sell": -1, "ask": -1, "unknown": 0, "": 0}
BOOLS = {"true": 1, "false": 0, "1": 1, "0": 0}
TARDIS_HEADER = "exchange,symbol,timestamp,local_timestamp,side,price,amount,is_snapshot"
TARDIS_KINDS = {
    "exchange": "text",
    "symbol": "text",
    "timestamp": "time",
    "local_timestamp": "time",
    "side": "side",
    "price": "float64",
    "amount": "float64",
    "is_snapshot": "bool",
}
DEPTH_ROWS = 20_000  # rows of the real depth used: the snapshot's long run of equal times, then diffs


# ---------------------------------------------------------------------------- reference


def cell_ns(text: str, unit: str) -> int:
    """A time cell in `unit` as int ns, exactly (the test data has no digits below 1 ns)."""
    return int(Decimal(text) * UNIT_NS[unit])


def convert_cells(values: list[str], kind: str, unit: str) -> np.ndarray:
    if kind == "time":
        return np.array([cell_ns(v, unit) for v in values], dtype=np.int64)
    if kind == "int64":
        return np.array([int(v) for v in values], dtype=np.int64)
    if kind == "float64":
        return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
    if kind == "bool":
        return np.array([BOOLS[v.lower()] for v in values], dtype=np.int8)
    if kind == "side":
        return np.array([SIDES[v.lower()] for v in values], dtype=np.int8)
    assert kind == "text"
    return np.array(values, dtype=object)


def pandas_columns(source, kinds: dict[str, str], unit: str = "us", *, header=True, names=None) -> dict:
    """Every row of a CSV (path, or text) as the columns TimeIndex must return: pandas splits
    the file (blank lines skipped, every cell kept as text), Python converts each cell."""
    if isinstance(source, (bytes, str)):  # the text itself; paths are Path objects
        source = io.BytesIO(source if isinstance(source, bytes) else source.encode())
    df = pd.read_csv(source, dtype=str, keep_default_na=False, header=0 if header else None, names=names)
    if not header and names is None:
        df.columns = [str(i) for i in range(df.shape[1])]
    return {name: convert_cells(df[name].tolist(), kinds[name], unit) for name in df.columns}


def select(columns: dict, ts_col: str, start=None, end=None, names=None) -> dict:
    """Rows with start <= time < end (None: open), of the columns `names` (all by default)."""
    ts = columns[ts_col]
    keep = np.ones(len(ts), dtype=bool)
    if start is not None:
        keep &= ts >= lobfast.to_ns(start)
    if end is not None:
        keep &= ts < lobfast.to_ns(end)
    return {n: v[keep] for n, v in columns.items() if names is None or n in names}


def assert_window(ti: TimeIndex, got: dict, want: dict) -> None:
    """Same columns in the same order, equal values and dtypes; text through ti.categories."""
    assert list(got) == list(want)
    for name, w in want.items():
        g = got[name]
        assert g.shape == w.shape, f"{name}: {g.shape} rows, want {w.shape}"
        if w.dtype == object:
            assert g.dtype == np.int32, name
            values = np.array(ti.categories[name], dtype=object)
            assert g.tolist() == [] or (0 <= g.min() and g.max() < len(values)), name
            assert values[g].tolist() == w.tolist(), name
        else:
            assert g.dtype == w.dtype, f"{name}: {g.dtype}, want {w.dtype}"
            assert np.array_equal(g, w, equal_nan=w.dtype.kind == "f"), name


def check_window(ti: TimeIndex, ref: dict, start, end, columns=None) -> int:
    got = ti.read(start, end, columns=columns)
    names = None if columns is None else {ti.ts_col, *columns}
    want = select(ref, ti.ts_col, start, end, names)
    assert_window(ti, got, want)
    return len(want[ti.ts_col])


def write_text(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def zstd_frames(pieces: list[bytes]) -> bytes:
    """Each piece compressed on its own by the zstd command: one frame each."""
    return b"".join(
        subprocess.run(["zstd", "-q", "-c"], input=p, capture_output=True, check=True).stdout for p in pieces
    )


def split_at(data: bytes, cuts) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


# ---------------------------------------------------------------------------- real data as CSV


@pytest.fixture(scope="module")
def real_depth():
    """The first DEPTH_ROWS depth rows of the spot BTC recording (exchange times are sorted)."""
    d = lobfast.read_binance(SPOT_BTC_0808).depth[:DEPTH_ROWS]
    assert np.all(np.diff(d.ts) >= 0)
    return d


def tardis_lines(d) -> list[str]:
    fmt = np.format_float_positional
    return [
        f"binance,BTCUSDT,{ts // 1000},{lt // 1000},{'bid' if s > 0 else 'ask'},"
        f"{fmt(p, trim='-')},{fmt(q, trim='-')},{'true' if f & lobfast.Flags.SNAPSHOT else 'false'}"
        for ts, lt, s, p, q, f in zip(
            d.ts.tolist(), d.local_ts.tolist(), d.side.tolist(), d.price, d.qty, d.flags.tolist()
        )
    ]


@pytest.fixture(scope="module")
def depth_csv(tmp_path_factory, real_depth):
    """(path, rows as text, pandas reference) of the real depth as a Tardis-style CSV."""
    rows = tardis_lines(real_depth)
    path = write_text(tmp_path_factory.mktemp("depth") / "depth.csv", "\n".join([TARDIS_HEADER, *rows]) + "\n")
    df = pd.read_csv(path)  # typed by pandas itself
    ref = {
        "exchange": df["exchange"].to_numpy(object),
        "symbol": df["symbol"].to_numpy(object),
        "timestamp": df["timestamp"].to_numpy(np.int64) * 1000,
        "local_timestamp": df["local_timestamp"].to_numpy(np.int64) * 1000,
        "side": df["side"].map({"bid": 1, "ask": -1}).to_numpy(np.int8),
        "price": df["price"].to_numpy(np.float64),
        "amount": df["amount"].to_numpy(np.float64),
        "is_snapshot": df["is_snapshot"].astype(np.int8).to_numpy(),
    }
    assert np.array_equal(ref["price"], real_depth.price) and np.array_equal(ref["amount"], real_depth.qty)
    return path, rows, ref


def test_real_depth_windows_equal_pandas(depth_csv, tmp_path):
    path, _, ref = depth_csv
    ti = TimeIndex(path, block=64, index_dir=tmp_path)
    assert ti.dtypes == TARDIS_KINDS and ti.columns == list(TARDIS_KINDS) and ti.ts_col == "timestamp"
    ts = ref["timestamp"]
    assert (ti.rows, ti.start, ti.end) == (len(ts), ts[0], ts[-1])
    entries = ti.files[0].entries
    assert len(entries) > 5000  # one every 64 bytes: most rows start an entry
    # the REST snapshot is one long run of equal times; a diff message is another run
    values, counts = np.unique(ts, return_counts=True)
    runs = [values[0], values[1:][np.argmax(counts[1:])]]
    for t in runs:
        assert np.count_nonzero(entries["ts"] == t) > 3, "the run should span several entries"
    windows = [
        (None, None),
        (None, ts[0]),  # before the first row: empty
        (ts[0], ts[0]),  # empty: start == end
        (ts[0], ts[0] + 1),  # exactly the snapshot run
        (None, ts[2500]),
        (ts[-1], None),  # the last timestamp's run
        (ts[-1], ts[-1] + 1),
        (ts[-1] + 1, None),  # after the data
        (ts[0] - 10**12, ts[0] - 1),
        (ts[-1] + 10**9, ts[-1] + 10**12),
    ]
    for t in runs[1:]:
        windows += [(t, t + 1), (t - 1, t), (t, None), (None, t + 1), (t - 1, t + 1)]
    for k in (1, 2015, 2016, 2017, 7777, len(ts) - 1):  # exactly on timestamps, inside runs too
        windows += [(ts[k], ts[k + 1] if k + 1 < len(ts) else None), (ts[k - 1], ts[k])]
    rng = np.random.default_rng(0)
    for _ in range(40):
        a, b = np.sort(rng.integers(0, len(ts), 2))
        windows.append((ts[a], ts[b]))
        windows.append(tuple(sorted((ts[a] + int(rng.integers(-5 * 10**6, 5 * 10**6)), ts[b] + 1))))
    sizes = [check_window(ti, ref, None if a is None else int(a), None if b is None else int(b)) for a, b in windows]
    assert sizes[0] == len(ts) and sizes[1] == sizes[2] == 0 and sizes[3] == counts[0] > 1000
    assert sizes[7] == sizes[8] == sizes[9] == 0 and sizes[5] == sizes[6] == np.count_nonzero(ts == ts[-1])


def test_real_depth_any_time_type_and_same_codes(depth_csv, tmp_path):
    path, _, ref = depth_csv
    ti = TimeIndex(str(path), index_dir=tmp_path)
    t0, t1 = int(ref["timestamp"][3000]), int(ref["timestamp"][9000])
    want = select(ref, "timestamp", t0, t1)
    for start, end in [
        (np.datetime64(t0, "ns"), np.datetime64(t1, "ns")),
        (str(np.datetime64(t0, "ns")), str(np.datetime64(t1, "ns"))),
        (pd.Timestamp(t0, tz="UTC"), pd.Timestamp(t1)),
    ]:
        assert_window(ti, ti.read(start, end), want)
    a = ti.read(t0, t1)
    b = ti.read(t0, t1)
    assert all(np.array_equal(a[n], b[n], equal_nan=True) for n in a)


def test_real_depth_column_subsets(depth_csv, tmp_path):
    path, _, ref = depth_csv
    ti = TimeIndex(path, block=256, index_dir=tmp_path)
    t0, t1 = int(ref["timestamp"][100]), int(ref["timestamp"][15000])
    for columns, order in [
        (["price"], ["timestamp", "price"]),
        (["is_snapshot", "exchange"], ["exchange", "timestamp", "is_snapshot"]),
        (["amount", "timestamp", "amount"], ["timestamp", "amount"]),
        ([], ["timestamp"]),
    ]:
        got = ti.read(t0, t1, columns=columns)
        assert list(got) == order
        check_window(ti, ref, t0, t1, columns=columns)
    with pytest.raises(KeyError, match="no column 'prices'"):
        ti.read(t0, t1, columns=["prices"])


# ---------------------------------------------------------------------------- synthetic CSVs


def fractional_times(unit: str, n: int, seed: int) -> list[str]:
    """Sorted epoch times in `unit` with 0 to (digits down to 1 ns) fraction digits."""
    rng = np.random.default_rng(seed)
    digits = {"s": 9, "ms": 6, "us": 3, "ns": 0}[unit]
    base = 1723161255 * 10**9 // UNIT_NS[unit]
    whole = base + np.cumsum(rng.choice([0, 0, 1, 2], n))
    out = []
    for w in whole.tolist():
        k = int(rng.integers(0, digits + 1))
        out.append(f"{w}" if k == 0 else f"{w}.{int(rng.integers(0, 10**k)):0{k}d}")
    return sorted(out, key=Decimal)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_units_with_fractions(tmp_path, unit):
    times = fractional_times(unit, 3000, seed=len(unit))
    rng = np.random.default_rng(1)
    text = "time,price\n" + "".join(f"{t},{rng.uniform(1, 1e5):.4f}\n" for t in times)
    path = write_text(tmp_path / f"{unit}.csv", text)
    ti = TimeIndex(path, ts_col="time", unit=unit, block=128)
    assert ti.dtypes == {"time": "time", "price": "float64"}
    ref = pandas_columns(path, ti.dtypes, unit)
    ts = ref["time"]
    for k in rng.integers(1, len(ts) - 1, 30):
        check_window(ti, ref, int(ts[k]), int(ts[k + 1]) + 1)
        check_window(ti, ref, int(ts[k]) - 1, int(ts[k]))
    assert check_window(ti, ref, None, None) == 3000


def test_unit_auto_tells_ms_from_us(tmp_path):
    """data.binance.vision trades: ms times until 2024, us from 2025; no header."""
    rng = np.random.default_rng(2)
    for name, t0, unit in [("ms.csv", 1723161256322, "ms"), ("us.csv", 1735689600010866, "us")]:
        ts = t0 + np.cumsum(rng.choice([0, 1, 3], 2000))
        lines = [
            f"{5266583935 + i},{rng.uniform(6e4, 6.2e4):.2f},{rng.uniform(0, 1):.8f},{rng.uniform(0, 1e4):.8f},"
            f"{t},{rng.choice(['True', 'False'])},True"
            for i, t in enumerate(ts.tolist())
        ]
        path = write_text(tmp_path / name, "\n".join(lines) + "\n")
        ti = TimeIndex(path, ts_col=4, unit="auto", block=256)
        kinds = {"0": "int64", "1": "float64", "2": "float64", "3": "float64", "4": "time", "5": "bool", "6": "bool"}
        assert ti.dtypes == kinds and ti.ts_col == "4"
        ref = pandas_columns(path, kinds, unit, header=False)  # the true unit
        assert np.array_equal(ref["4"], ts * UNIT_NS[unit])
        for a, b in rng.integers(0, len(ts), (20, 2)):
            check_window(ti, ref, int(ref["4"][min(a, b)]), int(ref["4"][max(a, b)]))
        check_window(ti, ref, None, None)


def test_headerless_names_and_dtypes_override(tmp_path):
    rng = np.random.default_rng(3)
    ts = 1723161256322 + np.cumsum(rng.choice([0, 1, 3], 3000))
    lines = [
        f"{100 + i},{rng.uniform(6e4, 6.2e4):.2f},{rng.uniform(0, 2):.8f},{t},{rng.choice(['True', 'False'])},"
        f"{rng.choice(['buy', 'sell'])}"
        for i, t in enumerate(ts.tolist())
    ]
    path = write_text(tmp_path / "trades.csv", "\n".join(lines) + "\n")
    names = ["id", "price", "qty", "time", "maker", "side"]
    ti = TimeIndex(path, ts_col=3, unit="ms", names=names, block=64)
    sniffed = {"id": "int64", "price": "float64", "qty": "float64", "time": "time", "maker": "bool", "side": "side"}
    assert ti.columns == names and ti.ts_col == "time" and ti.dtypes == sniffed
    ref = pandas_columns(path, sniffed, "ms", header=False, names=names)
    check_window(ti, ref, None, None)
    check_window(ti, ref, int(ref["time"][700]), int(ref["time"][2300]))
    override = {"id": "float64", "qty": "text", "side": "text", "maker": "text"}
    ti = TimeIndex(path, ts_col=3, unit="ms", names=names, dtypes=override, block=64)
    assert ti.dtypes == {**sniffed, **override}
    ref = pandas_columns(path, ti.dtypes, "ms", header=False, names=names)
    t = ref["time"]
    first = ti.read(int(t[700]), int(t[800]))
    for a, b in [(2000, 2300), (None, None), (700, 2300), (0, 1), (2999, None)]:  # the categories grow
        check_window(ti, ref, None if a is None else int(t[a]), None if b is None else int(t[b]))
    again = ti.read(int(t[700]), int(t[800]))  # codes stay comparable from one read to the next
    assert all(np.array_equal(first[n], again[n]) for n in first)
    # without names the columns are numbered
    ti = TimeIndex(path, ts_col=3, unit="ms")
    assert ti.columns == ["0", "1", "2", "3", "4", "5"] and ti.ts_col == "3"
    with pytest.raises(KeyError, match="not a column"):
        TimeIndex(path, ts_col=3, unit="ms", dtypes={"nope": "int64"})
    with pytest.raises(ValueError, match="dtype of 'id'"):
        TimeIndex(path, ts_col=3, unit="ms", names=names, dtypes={"id": "int32"})
    with pytest.raises(ValueError, match="names has 2 entries"):
        TimeIndex(path, ts_col=3, unit="ms", names=["a", "b"])


def test_empty_cells_nan_crlf_and_blank_lines(tmp_path):
    rng = np.random.default_rng(4)
    ts = 1723161255000000 + np.cumsum(rng.choice([0, 0, 1, 500], 4000))
    text = "timestamp,bid,ask,side,venue\n"
    for i, t in enumerate(ts.tolist()):
        bid = rng.choice(["", "NaN", "nan", f"{rng.uniform(1, 1e5):.{rng.integers(0, 9)}f}", "1e-05", "-0.5"])
        side = ["buy", "sell", "", "unknown"][i % 4]
        text += f"{t},{bid},{rng.uniform(1, 9):.3f},{side},v{i % 7}\n"
        if rng.random() < 0.03:
            text += "\n"
    text += "\n\n"  # blank lines at the end too
    kinds = {"timestamp": "time", "bid": "float64", "ask": "float64", "side": "side", "venue": "text"}
    for newline in ("\n", "\r\n"):
        path = write_text(tmp_path / f"nl{len(newline)}.csv", text, newline)
        ti = TimeIndex(path, block=64)
        assert ti.dtypes == kinds
        ref = pandas_columns(path, kinds)
        assert len(ref["timestamp"]) == 4000 and np.isnan(ref["bid"]).sum() > 500
        got = ti.read()
        assert_window(ti, got, ref)
        for a, b in rng.integers(0, 4000, (25, 2)):
            check_window(ti, ref, int(ts[min(a, b)]), int(ts[max(a, b)]))
        assert ti.files[0].info["lines"] == text.count("\n")


def test_crlf_blank_lines_keep_column_kinds(tmp_path):
    """A blank line is not a row, whatever the line ending: an integer column stays int64."""
    text = "timestamp,qty\n1723161255000000,5\n\n1723161255000001,6\n"
    kinds = {}
    for newline in ("\n", "\r\n"):
        path = write_text(tmp_path / f"nl{len(newline)}.csv", text, newline)
        ti = TimeIndex(path)
        kinds[newline] = ti.dtypes
        assert ti.read()["qty"].tolist() == [5, 6]
    assert pd.read_csv(tmp_path / "nl2.csv")["qty"].dtype == np.int64
    assert kinds["\r\n"] == kinds["\n"] == {"timestamp": "time", "qty": "int64"}


def test_column_kinds_are_decided_by_the_cell_readers(tmp_path):
    """Each column gets the kind whose cell reader accepts every sampled cell; what no
    reader of a narrower kind accepts (digits of other scripts, quoted numbers, a time
    outside 1970..2262) is text or int64, never a kind that then fails to read."""
    rows = [
        ("1723161255000000", "5", "", "1.5", "true", "Buy", "\u0661\u0662", '"7"', "99999999999999999", "x"),
        ("1723161255000001", "-6", "2", "nan", "FALSE", "", "\u0663", '"8"', "1723161255000", "1e3"),
        ("1723161255000002", "7", "3", "-2e-3", "True", "ask", "\u0664", '"9"', "1723161255001", "5"),
    ]
    names = ["timestamp", "int", "gap", "num", "flag", "side", "arabic", "quoted", "far_timestamp", "mixed"]
    text = ",".join(names) + "\n" + "".join(",".join(r) + "\n" for r in rows)
    path = write_text(tmp_path / "kinds.csv", text)
    ti = TimeIndex(path)
    assert ti.dtypes == {
        "timestamp": "time",
        "int": "int64",
        "gap": "float64",  # empty cells are NaN
        "num": "float64",
        "flag": "bool",
        "side": "side",
        "arabic": "text",  # no int64 reader reads these digits
        "quoted": "text",  # nor quoted numbers
        "far_timestamp": "int64",  # integers, but not times in 1970..2262 us
        "mixed": "text",
    }
    got = ti.read()
    assert got["int"].tolist() == [5, -6, 7] and got["side"].tolist() == [1, 0, -1]
    assert got["far_timestamp"].tolist() == [99999999999999999, 1723161255000, 1723161255001]


_CELLS = [
    "",
    "0",
    "-3",
    "12",
    "1.5",
    "-0.25",
    "1e5",
    "nan",
    "NaN",
    "true",
    "False",
    "buy",
    "SELL",
    "bid",
    "ask",
    "unknown",
    "x",
    "\u0661",
    '"4"',
    "+5",
    "18446744073709551616",
    " 1",
    "inf",
    ".5",
    "5.",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(_CELLS), min_size=3, max_size=3), min_size=1, max_size=8))
def test_guessed_kinds_always_read(tmp_path, cells):
    """Whatever the cells, every sampled row reads with the kinds guessed for them."""
    text = "timestamp,a,b,c\n" + "".join(f"{1723161255000000 + i}," + ",".join(r) + "\n" for i, r in enumerate(cells))
    path = write_text(tmp_path / "any.csv", text)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sidecar_path(str(path)))  # each example is a new file at the same path
    ti = TimeIndex(path)
    got = ti.read()
    assert len(got["timestamp"]) == len(cells)
    for j, name in enumerate("abc"):
        col = [r[j] for r in cells]
        kind = ti.dtypes[name]
        if kind == "int64":
            assert got[name].tolist() == [int(v) for v in col]
        elif kind == "float64":
            want = [float("nan") if v.lower() in ("", "nan") else float(v) for v in col]
            np.testing.assert_array_equal(got[name], np.array(want))


def test_late_float_in_integer_column_needs_dtypes(tmp_path):
    """Kinds come from the first 1000 rows: a float after them is an error naming its cell,
    and dtypes= reads it."""
    lines = [f"{1723161255000000 + i},{i}" for i in range(3000)]
    lines[2500] = f"{1723161255000000 + 2500},2500.5"
    path = write_text(tmp_path / "late.csv", "timestamp,qty\n" + "\n".join(lines) + "\n")
    ti = TimeIndex(path, block=256)
    assert ti.dtypes["qty"] == "int64"
    t = lambda i: (1723161255000000 + i) * 1000  # noqa: E731
    assert ti.read(t(0), t(2500))["qty"].tolist() == list(range(2500))
    offset = len("timestamp,qty\n") + sum(len(x) + 1 for x in lines[:2500])
    with pytest.raises(LobError, match=r"line 2502 \(byte \d+\): column 2 \(qty\): expected an integer") as e:
        ti.read(t(2400), t(2600))
    assert (e.value.line, e.value.offset) == (2502, offset)
    ti = TimeIndex(path, block=256, dtypes={"qty": "float64"})
    ref = pandas_columns(path, {"timestamp": "time", "qty": "float64"})
    check_window(ti, ref, t(2400), t(2600))


# ---------------------------------------------------------------------------- random files


KINDS = {"timestamp": "time", "price": "float64", "side": "side", "tag": "text", "flag": "bool", "qty": "int64"}


def random_csv(seed: int, n: int, tie: float, newline: str, blank: float) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = np.where(rng.random(n) < tie, 0, rng.choice([1, 7, 1000, 123456], n))
    ts = 1_600_000_000_000_000 + int(rng.integers(0, 10**14)) + np.cumsum(steps)
    lines = [",".join(KINDS)]
    for t in ts.tolist():
        price = "" if rng.random() < 0.1 else f"{rng.uniform(0, 1e5):.{rng.integers(1, 9)}f}"
        side = rng.choice(["buy", "sell", "bid", "ask", "unknown"])
        flag = rng.choice(["true", "false", "True", "FALSE"])
        lines.append(f"{t},{price},{side},t{rng.integers(0, 20)},{flag},{rng.integers(-(10**12), 10**12)}")
        if rng.random() < blank:
            lines.append("")
    return (newline.join(lines) + newline).encode(), ts * 1000


def compress(kind: str, text: bytes, path: Path, cuts: list[float], frame_bytes: int) -> Path:
    positions = [int(c * len(text)) for c in cuts]
    if kind == "plain":
        path.write_bytes(text)
    elif kind == "gzip":
        path = path.with_suffix(".csv.gz")
        path.write_bytes(b"".join(gzip.compress(p) for p in split_at(text, positions)))  # members cut anywhere
    elif kind == "zstd":
        path = path.with_suffix(".csv.zst")
        path.write_bytes(zstd_frames([text]))
    elif kind == "zstd-frames":  # lines run over frame ends
        path = path.with_suffix(".csv.zst")
        path.write_bytes(zstd_frames(split_at(text, positions)))
    else:
        plain = path.with_suffix(".src.csv")
        plain.write_bytes(text)
        path = path.with_suffix(".csv.zst")
        lobfast.convert(plain, path, frame_bytes=frame_bytes, frame="1ms")
        plain.unlink()
    return path


def window_times(ts: np.ndarray, a: float, b: float, how: str) -> tuple[int, int]:
    """A window from two fractions: on row times ("rows"), just past them ("rows+1"), or
    anywhere in and around the data ("span")."""
    n = len(ts)
    if n and how != "span":
        t0, t1 = sorted(int(ts[int(x * (n - 1))]) for x in (a, b))
        return (t0, t1) if how == "rows" else (t0 + 1, t1 + 1)
    lo, hi = (int(ts[0]), int(ts[-1])) if n else (10**18, 10**18 + 10**6)
    t0, t1 = sorted(lo - 1000 + int(x * (hi - lo + 2000)) for x in (a, b))
    return t0, t1


@needs_zstd
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(st.sampled_from([0, 1, 2]), st.integers(3, 400)),
    tie=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
    newline=st.sampled_from(["\n", "\r\n"]),
    block=st.sampled_from([1, 16, 64, 256, 4096, 1 << 16]),
    kind=st.sampled_from(["plain", "gzip", "zstd", "zstd-frames", "convert"]),
    cuts=st.lists(st.floats(0, 1), max_size=8),
    frame_bytes=st.sampled_from([1, 50, 200, 1000]),
    windows=st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.sampled_from(["rows", "rows+1", "span"])),
        min_size=1,
        max_size=6,
    ),
)
def test_random_files_and_windows(seed, n, tie, newline, block, kind, cuts, frame_bytes, windows):
    # blank lines in CRLF files are left to test_crlf_blank_lines_keep_column_kinds
    text, ts = random_csv(seed, n, tie, newline, 0.05 if newline == "\n" else 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = compress(kind, text, Path(tmp) / "data.csv", cuts, frame_bytes)
        with pytest.warns(LobWarning, match="gzip") if kind == "gzip" else contextlib.nullcontext():
            ti = TimeIndex(path, block=block)
        assert ti.rows == n
        if n:
            assert ti.dtypes == KINDS and (ti.start, ti.end) == (ts[0], ts[-1])
        ref = pandas_columns(text, KINDS if n else ti.dtypes)
        assert np.array_equal(ref["timestamp"], ts)
        for a, b, how in windows:
            check_window(ti, ref, *window_times(ts, a, b, how))
        check_window(ti, ref, None, None)


# ---------------------------------------------------------------------------- rotated files


def test_rotated_files_are_one_dataset(depth_csv, tmp_path):
    _, rows, ref = depth_csv
    ts = ref["timestamp"]
    # cut inside runs of equal times, so a run spans two files
    cuts = [int(np.flatnonzero((ts[1:] == ts[:-1]) & (np.arange(1, len(ts)) >= c))[0]) + 1 for c in (6000, 13000)]
    assert all(ts[c] == ts[c - 1] for c in cuts)
    # names sort in another order than the times
    names = ["2024-08-08_c.csv", "2024-08-08_a.csv", "2024-08-08_b.csv"]
    d = tmp_path / "rotated"
    d.mkdir()
    for name, (a, b) in zip(names, zip([0, *cuts], [*cuts, len(rows)])):
        write_text(d / name, "\n".join([TARDIS_HEADER, *rows[a:b]]) + "\n")
    for paths in [d, str(d / "*.csv"), [d / "2024-08-08_b.csv", d / "2024-08-08_a.csv", d / "2024-08-08_c.csv"]]:
        ti = TimeIndex(paths, block=512)
        assert [Path(f.path).name for f in ti.files] == names
        assert ti.rows == len(ts) and (ti.start, ti.end) == (ts[0], ts[-1])
        assert check_window(ti, ref, None, None) == len(ts)
        for c in cuts:  # windows on the run that spans two files
            for t0, t1 in [(ts[c], ts[c] + 1), (ts[c - 1], None), (None, ts[c]), (ts[c - 500], ts[c + 500])]:
                check_window(ti, ref, None if t0 is None else int(t0), None if t1 is None else int(t1))
        check_window(ti, ref, int(ts[100]), int(ts[-100]))
        assert ti.last_read["files"] == 3
        check_window(ti, ref, int(ts[3000]), int(ts[3500]))
        assert ti.last_read["files"] == 1
    assert sorted(os.listdir(d)) == sorted(names + [n + ".lfidx" for n in names])


def test_overlapping_files_raise_naming_both(depth_csv, tmp_path):
    _, rows, _ = depth_csv
    write_text(tmp_path / "a.csv", "\n".join([TARDIS_HEADER, *rows[:5000]]) + "\n")
    write_text(tmp_path / "b.csv", "\n".join([TARDIS_HEADER, *rows[4000:9000]]) + "\n")
    with pytest.raises(LobError, match="overlap") as e:
        TimeIndex(tmp_path)
    assert str(tmp_path / "a.csv") in str(e.value) and str(tmp_path / "b.csv") in str(e.value)


def test_mixed_csv_and_raw_files_raise(depth_csv, tmp_path):
    _, rows, _ = depth_csv
    write_text(tmp_path / "a.csv", "\n".join([TARDIS_HEADER, *rows[:100]]) + "\n")
    (tmp_path / "b.txt").write_bytes(gzip.decompress(SPOT_BTC_0808.read_bytes())[:100_000].rsplit(b"\n", 1)[0] + b"\n")
    with pytest.raises(LobError, match="mix CSV and raw") as e:
        TimeIndex([tmp_path / "a.csv", tmp_path / "b.txt"])
    assert "a.csv (csv)" in str(e.value) and "b.txt (raw)" in str(e.value)
    write_text(tmp_path / "c.csv", "timestamp,price\n1723161999000000,1.5\n")
    with pytest.raises(LobError, match="other columns"):
        TimeIndex([tmp_path / "a.csv", tmp_path / "c.csv"])


# ---------------------------------------------------------------------------- sidecars


def simple_csv(path: Path, n: int = 20_000, shift: int = 0) -> tuple[Path, dict]:
    """Rows 10 us apart; `shift` moves every time without changing the file's size."""
    lines = [f"{1723161255000000 + 10 * i + shift},{i % 97}.25,x{i % 3}" for i in range(n)]
    text = "timestamp,price,tag\n" + "\n".join(lines) + "\n"
    path.write_text(text)
    return path, pandas_columns(text, {"timestamp": "time", "price": "float64", "tag": "text"})


def status(ti: TimeIndex) -> str:
    return ti.info()[0]["status"]


def test_sidecar_is_loaded_the_second_time(tmp_path, monkeypatch):
    path, ref = simple_csv(tmp_path / "a.csv")
    ti = TimeIndex(path, block=256)
    assert status(ti) == "built" and os.path.exists(sidecar_path(str(path)))
    entries = ti.files[0].entries.copy()

    def no_build(*args):
        raise AssertionError("the index was built again")

    monkeypatch.setattr(lobfast.timeindex._core.TimeIx, "build", no_build)
    ti = TimeIndex(path, block=256)
    assert status(ti) == "loaded" and np.array_equal(ti.files[0].entries, entries)
    t0, t1 = int(ref["timestamp"][5000]), int(ref["timestamp"][6000])
    assert check_window(ti, ref, t0, t1) == 1000


def test_sidecar_is_rebuilt_after_an_append(tmp_path):
    path, _ = simple_csv(tmp_path / "a.csv")
    TimeIndex(path)
    with open(path, "a") as f:
        f.write("1723161256000000,1.5,x9\n1723161256000001,2.5,x9\n")
    ti = TimeIndex(path)
    assert status(ti).startswith("rebuilt (stale")
    ref = pandas_columns(path, ti.dtypes)
    assert check_window(ti, ref, 1723161255999999000, None) == 2
    assert status(TimeIndex(path)) == "loaded"


@pytest.mark.parametrize("where", ["head", "tail"])
def test_same_size_rewrite_is_found_by_the_fingerprint(tmp_path, where):
    path, _ = simple_csv(tmp_path / "a.csv")
    assert os.path.getsize(path) > 4 * 65536
    TimeIndex(path, block=1024)
    st = os.stat(path)
    text = path.read_bytes()
    at = 100 if where == "head" else len(text) - 100
    line_start = text.rindex(b"\n", 0, at) + 1
    old = text[line_start : text.index(b",", line_start)]
    new = str(int(old) + 3).encode()  # a later time, still in order: same size
    text = text[:line_start] + new + text[line_start + len(new) :]
    path.write_bytes(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    ti = TimeIndex(path, block=1024)
    assert status(ti) == "rebuilt (stale: the data file changed since it was indexed)"
    ref = pandas_columns(path, ti.dtypes)
    t = int(new) * 1000
    assert check_window(ti, ref, t, t + 1) == 1
    check_window(ti, ref, None, None)


def corrupt_sidecars():
    def flip(data):
        return data[:50] + bytes([data[50] ^ 0x20]) + data[51:]

    def entries_wrong(data):
        """A sidecar with a valid checksum whose entries do not fit the file."""
        head = struct.Struct("<6sHI")
        _, _, n_json = head.unpack_from(data)
        e = np.frombuffer(data[head.size + n_json : -4], "<i8").reshape(-1, 6).copy()
        e[len(e) // 2, 3] = 10**12  # a text offset far past the file
        body = data[: head.size + n_json] + e.tobytes()
        return body + struct.pack("<I", zlib.crc32(body))

    return {
        "flipped byte": flip,
        "truncated": lambda data: data[: len(data) // 2],
        "garbage": lambda data: np.random.default_rng(0).bytes(len(data)),
        "wrong magic": lambda data: b"XXIDX\0" + data[6:],
        "empty": lambda data: b"",
        "entries past the file": entries_wrong,
    }


@pytest.mark.parametrize("damage", list(corrupt_sidecars()))
def test_corrupt_sidecar_is_rebuilt_with_a_warning(tmp_path, damage):
    path, ref = simple_csv(tmp_path / "a.csv")
    TimeIndex(path, block=512)
    side = Path(sidecar_path(str(path)))
    side.write_bytes(corrupt_sidecars()[damage](side.read_bytes()))
    with pytest.warns(LobWarning, match=r"a\.csv\.lfidx: corrupt: .*; rebuilding the index"):
        ti = TimeIndex(path, block=512)
    assert status(ti).startswith("rebuilt (corrupt")
    for k in (0, 7000, 19_999):
        check_window(ti, ref, int(ref["timestamp"][k]), int(ref["timestamp"][k]) + 10**5)
    assert status(TimeIndex(path, block=512)) == "loaded"  # the rebuilt sidecar is good


def test_other_parameters_rebuild(tmp_path):
    path, ref = simple_csv(tmp_path / "a.csv")
    assert status(TimeIndex(path)) == "built"
    ti = TimeIndex(path, unit="ns")
    assert status(ti) == "rebuilt (stale: built with other parameters)"
    assert ti.read()["timestamp"][0] == 1723161255000000  # read as ns now
    ti = TimeIndex(path, ts_col=0)
    assert status(ti) == "rebuilt (stale: built with other parameters)"
    assert check_window(ti, ref, None, None) == 20_000
    ti = TimeIndex(path, ts_col=0, block=100)
    assert status(ti) == "rebuilt (stale: built with other parameters)" and len(ti.files[0].entries) > 1000
    assert status(TimeIndex(path, ts_col=0, block=100)) == "loaded"


def assert_kept_in_memory(ti: TimeIndex, ref: dict) -> None:
    assert status(ti).endswith(", in memory")
    check_window(ti, ref, int(ref["timestamp"][100]), int(ref["timestamp"][900]))


def test_unwritable_sidecar_is_kept_in_memory(tmp_path, monkeypatch):
    path, ref = simple_csv(tmp_path / "a.csv", n=1000)

    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(sidecar, "save", refuse)
        with pytest.warns(LobWarning, match="Permission denied.*kept in memory"):
            ti = TimeIndex(path)
    assert_kept_in_memory(ti, ref)
    assert not os.path.exists(sidecar_path(str(path)))
    # index_dir is a file, not a directory
    (tmp_path / "not_a_dir").write_text("x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ti = TimeIndex(path, index_dir=tmp_path / "not_a_dir")
    assert any(issubclass(w.category, LobWarning) and "kept in memory" in str(w.message) for w in caught)
    assert_kept_in_memory(ti, ref)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        path, ref = simple_csv(ro / "b.csv", n=1000)
        ro.chmod(0o555)
        try:
            with pytest.warns(LobWarning, match="kept in memory"):
                ti = TimeIndex(path)
            assert_kept_in_memory(ti, ref)
        finally:
            ro.chmod(0o755)


def test_index_dir_keeps_sidecars_elsewhere(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    ix = tmp_path / "ix"
    ix.mkdir()
    a, ref_a = simple_csv(tmp_path / "x" / "day.csv", n=1000)
    b, ref_b = simple_csv(tmp_path / "y" / "day.csv", n=1000, shift=10**9)
    for p, ref in [(a, ref_a), (b, ref_b)]:
        ti = TimeIndex(p, index_dir=str(ix))
        assert status(ti) == "built" and os.path.exists(sidecar_path(str(p), str(ix)))
        check_window(ti, ref, None, None)
    assert os.listdir(tmp_path / "x") == ["day.csv"] and os.listdir(tmp_path / "y") == ["day.csv"]
    assert len(os.listdir(ix)) == 2  # same name, different directories: two sidecars
    assert status(TimeIndex(a, index_dir=ix)) == "loaded"
    assert status(TimeIndex(b, index_dir=ix)) == "loaded"
    assert status(TimeIndex(a)) == "built"  # next to the file is another place


# ---------------------------------------------------------------------------- bad input


def test_unsorted_file_names_the_line_and_offset(tmp_path):
    lines = [f"{1723161255000000 + i},{i}.5" for i in range(5000)]
    lines[3210], lines[3211] = lines[3211], lines[3210]
    text = "timestamp,price\n" + "\n".join(lines) + "\n"
    path = write_text(tmp_path / "unsorted.csv", text)
    offset = text.index("\n" + lines[3211] + "\n") + 1  # the first line whose time goes back
    with pytest.raises(LobError, match=r"line 3213 \(byte \d+\): the file is not sorted by 'timestamp'") as e:
        TimeIndex(path, block=128)
    assert (e.value.line, e.value.offset) == (3213, offset)
    assert str(path) in str(e.value)
    assert not os.path.exists(sidecar_path(str(path)))


def test_errors_name_the_path_as_text(tmp_path):
    """Like the readers' errors (tests/test_bad_input.py), LobError.path is the str path."""
    path = write_text(tmp_path / "unsorted.csv", "timestamp,price\n2,1.5\n1,2.5\n")
    with pytest.raises(LobError) as e:
        TimeIndex(path)
    assert e.value.path == str(path)
    assert str(e.value).startswith(f"{path}, line 3 (byte {len('timestamp,price') + 7}): ")


def test_missing_time_column_lists_the_header(tmp_path):
    path = write_text(tmp_path / "a.csv", "exchange,symbol,ts,price\nbinance,BTCUSDT,1723161255000000,1.5\n")
    with pytest.raises(LobError, match=r"no timestamp column 'timestamp' in the header \['exchange', 'symbol', 'ts'"):
        TimeIndex(path)
    with pytest.raises(LobError, match="no header line: give ts_col as a position"):
        TimeIndex(write_text(tmp_path / "b.csv", "1723161255000000,1.5\n"))
    with pytest.raises(LobError, match="the timestamp column 7 is not one of the 4 columns"):
        TimeIndex(path, ts_col=7)


def test_window_outside_the_data_is_empty_and_start_after_end_is_an_error(tmp_path):
    path, ref = simple_csv(tmp_path / "a.csv", n=1000)
    ti = TimeIndex(path)
    for start, end in [("2000-01-01", "2001-01-01"), ("2030-01-01", None), (None, "2024-08-08T23:54:15")]:
        got = ti.read(start, end)
        assert {n: (len(v), v.dtype) for n, v in got.items()} == {
            "timestamp": (0, np.int64),
            "price": (0, np.float64),
            "tag": (0, np.int32),
        }
    check_window(ti, ref, "2024-08-08T23:54:15.005", "2024-08-08T23:54:15.006")
    with pytest.raises(ValueError, match="is after end"):
        ti.read("2024-08-09", "2024-08-08")
    with pytest.raises(ValueError, match="cannot read"):
        ti.read("yesterday")


def test_non_numeric_time_names_line_and_column(tmp_path):
    lines = [f"{1723161255000000 + i},{i}.5" for i in range(2000)]
    lines[1500] = "17231612550O1500,1.5"  # a letter O for a zero
    text = "timestamp,price\n" + "\n".join(lines) + "\n"
    path = write_text(tmp_path / "a.csv", text)
    with pytest.raises(LobError, match=r"line 1502 \(byte \d+\): the time \('timestamp'\) is not a number") as e:
        TimeIndex(path)
    assert (e.value.line, e.value.offset) == (1502, text.index(lines[1500]))
    assert "17231612550O1500" in str(e.value)
    empty = write_text(tmp_path / "b.csv", "timestamp,price\n1723161255000000,1.5\n,2.5\n")
    with pytest.raises(LobError, match=r"line 3 .*the time \('timestamp'\) is not a number"):
        TimeIndex(empty)


def test_malformed_number_inside_a_window(tmp_path):
    lines = [f"{1723161255000000 + i},{i}.5,x" for i in range(4000)]
    lines[3000] = f"{1723161255000000 + 3000},3000.5.5,x"
    text = "timestamp,price,tag\n" + "\n".join(lines) + "\n"
    path = write_text(tmp_path / "a.csv", text)
    ti = TimeIndex(path, block=64)
    good = pandas_columns("timestamp,price,tag\n" + "\n".join(lines[:3000]) + "\n", ti.dtypes)
    t = lambda i: (1723161255000000 + i) * 1000  # noqa: E731
    check_window(ti, good, t(0), t(3000))  # up to the bad row: fine
    check_window(ti, good, t(2000), t(2999))
    for window in [(t(2999), t(3001)), (t(3000), None), (None, None)]:
        with pytest.raises(
            LobError, match=r"line 3002 \(byte \d+\): column 2 \(price\): expected a decimal number"
        ) as e:
            ti.read(*window)
        assert (e.value.line, e.value.offset) == (3002, text.index(lines[3000]))
        assert "3000.5.5" in str(e.value) and str(path) in str(e.value)
    assert ti.read(t(3001), t(3100))["price"][0] == 3001.5


@needs_zstd
def test_corrupt_zstd_frame(tmp_path):
    path, ref = simple_csv(tmp_path / "a.csv")
    text = path.read_bytes()
    pieces = split_at(text, range(40_001, len(text), 40_001))  # lines run over frame ends
    frames = [zstd_frames([p]) for p in pieces]
    k = 6
    bad = bytearray(frames[k])
    bad[len(bad) // 2 : len(bad) // 2 + 16] = bytes(16)  # zeroes in the middle of frame k
    frames[k] = bytes(bad)
    zst = tmp_path / "a.csv.zst"
    zst.write_bytes(b"".join(frames))
    offset = sum(len(f) for f in frames[:k])
    with pytest.warns(LobWarning, match=rf"zstd frame {k} at byte {offset} is corrupt"):
        ti = TimeIndex(zst, block=4096)
    before = sum(len(p) for p in pieces[:k])  # text before frame k
    complete = text[: text.rindex(b"\n", 0, before) + 1]
    rows = complete.count(b"\n") - 1
    assert ti.rows == rows
    ts = ref["timestamp"]
    for a, b in [(None, ts[rows - 1] + 1), (ts[100], ts[rows - 1]), (ts[rows // 2], ts[rows - 5])]:
        check_window(ti, ref, None if a is None else int(a), int(b))
    for window in [(int(ts[rows - 1]), int(ts[rows]) + 1), (int(ts[-100]), None), (None, None)]:
        with pytest.raises(LobError, match=rf"zstd frame {k} at byte {offset} is corrupt"):
            ti.read(*window)
    with pytest.warns(LobWarning, match=rf"zstd frame {k} at byte {offset}"):
        ti = TimeIndex(zst, block=4096)  # loaded from the sidecar: still says so
    assert status(ti) == "loaded"


@needs_zstd
@pytest.mark.parametrize("rows, cut_in_row", [(2000, 0), (2000, 1), (1, 0)])
def test_rows_that_span_zstd_frames(tmp_path, rows, cut_in_row):
    """Frames written by other tools may end inside a line, the first data row's included."""
    path, ref = simple_csv(tmp_path / "a.csv", n=rows)
    text = path.read_bytes()
    row_starts = [i + 1 for i, c in enumerate(text) if c == ord("\n")]
    cut = row_starts[cut_in_row] + 7  # inside that row's time
    zst = tmp_path / "a.csv.zst"
    zst.write_bytes(zstd_frames(split_at(text, [cut, len(text) // 2 + 3])))
    ti = TimeIndex(zst, block=256)
    assert ti.rows == rows and ti.start == ref["timestamp"][0]
    ts = ref["timestamp"]
    check_window(ti, ref, None, None)
    check_window(ti, ref, int(ts[0]), int(ts[0]) + 1)
    check_window(ti, ref, int(ts[rows // 2]), None)
    assert status(TimeIndex(zst, block=256)) == "loaded"  # the saved index is consistent


@needs_zstd
@pytest.mark.parametrize("frames", [1, 30])
def test_truncated_zstd_is_read_up_to_its_last_complete_line(tmp_path, frames):
    path, _ = simple_csv(tmp_path / "a.csv", n=40_000)
    text = path.read_bytes()
    data = zstd_frames(split_at(text, np.linspace(0, len(text), frames + 1)[1:-1].astype(int)))
    cut = tmp_path / "cut.csv.zst"
    cut.write_bytes(data[: len(data) - len(data) // (3 * frames)])  # inside the last frame
    out = subprocess.run(["zstd", "-dc", str(cut)], capture_output=True).stdout  # what can be decompressed
    complete = out[: out.rindex(b"\n") + 1]
    assert 0 < len(complete) < len(text)
    with pytest.warns(LobWarning, match="ends inside a compressed block.*indexed up to its last complete line"):
        ti = TimeIndex(cut, block=2048)
    ref = pandas_columns(complete, ti.dtypes)
    assert ti.rows == len(ref["timestamp"])
    ts = ref["timestamp"]
    check_window(ti, ref, None, None)
    check_window(ti, ref, int(ts[-50]), None)
    check_window(ti, ref, int(ts[len(ts) // 3]), int(ts[-1]) + 1)


def test_file_changed_between_open_and_read_is_reindexed(tmp_path):
    path, _ = simple_csv(tmp_path / "a.csv")
    ti = TimeIndex(path, block=256)
    st = os.stat(path)
    _, ref = simple_csv(path, shift=5000)  # same size, every time 5 ms later
    assert os.path.getsize(path) == st.st_size
    if os.stat(path).st_mtime_ns == st.st_mtime_ns:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    t0 = int(ref["timestamp"][10_000]) - 2_000_000
    check_window(ti, ref, t0, t0 + 10**8)
    check_window(ti, ref, None, t0)
    assert "rebuilt" in status(ti)
    with open(path, "a") as f:  # a recorder appending
        f.write("1723161256000000,1.25,x1\n")
    ref = pandas_columns(path, ti.dtypes)
    assert check_window(ti, ref, 1723161255999999999, None) == 1


def test_file_rewritten_with_same_size_and_mtime_is_never_read_wrongly(tmp_path):
    """The file's first bytes change (what the sidecar's fingerprint covers), its size and
    mtime do not: a read gives the new file's rows, or a LobError, never rows of neither."""
    path, _ = simple_csv(tmp_path / "a.csv")
    ti = TimeIndex(path, block=256)
    st = os.stat(path)
    _, ref = simple_csv(path, shift=5000)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    t0 = int(ref["timestamp"][10_000]) - 2_000_000
    for window in [(t0, t0 + 10**8), (t0, None), (None, t0)]:
        try:
            got = ti.read(*window)
        except LobError as e:
            assert "changed" in str(e)
        else:
            assert_window(ti, got, select(ref, "timestamp", *window))


def test_sidecar_header_names_the_file_stamp(tmp_path):
    """The .lfidx header records size, mtime and fingerprint of the file (what is checked)."""
    path, _ = simple_csv(tmp_path / "a.csv", n=100)
    TimeIndex(path, unit="us")
    data = Path(sidecar_path(str(path))).read_bytes()
    magic, version, n_json = struct.unpack_from("<6sHI", data)
    assert magic == b"LFIDX\0" and version == sidecar.VERSION
    header = json.loads(data[12 : 12 + n_json])
    st = os.stat(path)
    assert header["source"]["size"] == st.st_size and header["source"]["mtime_ns"] == st.st_mtime_ns
    assert header["source"]["fingerprint"] == zlib.crc32(path.read_bytes())  # under 64 KiB: all of it
    assert header["params"]["unit"] == "us" and header["info"]["rows"] == 100
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


# ---------------------------------------------------------------------------- hostile sidecars, bounds, signals


def resign(data: bytes, header=None, entries=None, body: bytes | None = None) -> bytes:
    """The sidecar `data` with another JSON header / entries / raw header bytes, and a valid CRC."""
    head = struct.Struct("<6sHI")
    magic, version, n_json = head.unpack_from(data)
    old_header = json.loads(data[head.size : head.size + n_json])
    old_entries = np.frombuffer(data[head.size + n_json : -4], "<i8").reshape(-1, 6)
    if body is None:
        body = json.dumps(old_header if header is None else header).encode()
    e = old_entries if entries is None else entries
    out = head.pack(magic, version, len(body)) + body + np.ascontiguousarray(e, "<i8").tobytes()
    return out + struct.pack("<I", zlib.crc32(out))


def edited(change):
    def edit(data):
        head = struct.Struct("<6sHI")
        _, _, n_json = head.unpack_from(data)
        h = json.loads(data[head.size : head.size + n_json])
        change(h)
        return resign(data, header=h)

    return edit


def malformed_sidecars():
    """Sidecars with a valid checksum and the right file stamp whose content is wrong."""
    return {
        "header is a list": lambda d: resign(d, body=b"[1, 2]"),
        "header runs past the end": lambda d: resign(d, body=b"{}")[:12] + b"\xff\xff" + resign(d, body=b"{}")[14:],
        "deeply nested header": lambda d: resign(d, body=b"[" * 100_000 + b"]" * 100_000),
        "key names another column": edited(lambda h: h["layout"]["key"].__setitem__(1, 1)),
        "key field past the columns": edited(lambda h: h["layout"]["key"].__setitem__(1, 99)),
        "key in another unit": edited(lambda h: h["layout"]["key"].__setitem__(2, 1)),
        "negative unit": edited(lambda h: h["layout"]["key"].__setitem__(2, -5)),
        "raw key on a csv": edited(lambda h: h["layout"].update(format="raw")),
        "unknown column kind": edited(lambda h: h["layout"]["kinds"].__setitem__(1, "complex")),
        "summary value is text": edited(lambda h: h["info"].__setitem__("truncated", "many")),
        "summary is a list": edited(lambda h: h.__setitem__("info", [1])),
        "unknown compression": edited(lambda h: h["info"].__setitem__("compression", 7)),
    }


@pytest.mark.parametrize("damage", list(malformed_sidecars()))
def test_malformed_sidecar_with_a_valid_checksum_is_rebuilt(tmp_path, damage):
    path, ref = simple_csv(tmp_path / "a.csv", n=3000)
    TimeIndex(path, block=512)
    side = Path(sidecar_path(str(path)))
    side.write_bytes(malformed_sidecars()[damage](side.read_bytes()))
    with pytest.warns(LobWarning, match=r"a\.csv\.lfidx: corrupt: .*; rebuilding the index"):
        ti = TimeIndex(path, block=512)
    assert status(ti).startswith("rebuilt (corrupt")
    check_window(ti, ref, int(ref["timestamp"][100]), int(ref["timestamp"][2000]))
    assert status(TimeIndex(path, block=512)) == "loaded"


@needs_zstd
def test_sidecar_whose_entries_do_not_fit_the_file_is_rebuilt_when_used(tmp_path):
    """Entries that pass every check but point between zstd frames: the lookup fails on the
    sidecar, which is rebuilt (the data file is not blamed)."""
    path, ref = simple_csv(tmp_path / "a.csv")
    text = path.read_bytes()
    zst = tmp_path / "a.csv.zst"
    zst.write_bytes(zstd_frames(split_at(text, range(30_001, len(text), 30_001))))
    TimeIndex(zst, block=4096)
    side = Path(sidecar_path(str(zst)))
    data = side.read_bytes()
    head = struct.Struct("<6sHI")
    _, _, n_json = head.unpack_from(data)
    e = np.frombuffer(data[head.size + n_json : -4], "<i8").reshape(-1, 6).copy()
    e[1:, 4] += 3  # restart 3 bytes into each frame
    side.write_bytes(resign(data, entries=e))
    ti = TimeIndex(zst, block=4096)
    assert status(ti) == "loaded"
    t = int(ref["timestamp"][12_345])
    with pytest.warns(LobWarning, match=r"a\.csv\.zst\.lfidx: does not fit the file .*; rebuilding the index"):
        check_window(ti, ref, t, t + 10**7)
    assert status(ti).startswith("rebuilt (corrupt")
    check_window(ti, ref, int(ref["timestamp"][5]), int(ref["timestamp"][19_000]))
    assert status(TimeIndex(zst, block=4096)) == "loaded"


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "fifo", "directory", "symlink to a good sidecar"])
def test_sidecar_that_is_not_a_regular_file_is_rebuilt(tmp_path, kind):
    """Opened without following links and without waiting: never read without bound, never
    blocks; rebuilt (and replaced when it can be) with a warning saying why."""
    path, ref = simple_csv(tmp_path / "a.csv", n=2000)
    side = sidecar_path(str(path))
    if kind == "symlink to /dev/zero":
        os.symlink("/dev/zero", side)
    elif kind == "fifo":
        os.mkfifo(side)
    elif kind == "directory":
        os.mkdir(side)
    else:
        TimeIndex(path)
        os.replace(side, tmp_path / "good.lfidx")
        os.symlink(tmp_path / "good.lfidx", side)
    why = "not a regular file" if kind in ("fifo", "directory") else "cannot open it without following links"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ti = TimeIndex(path)
    text = [str(w.message) for w in caught if issubclass(w.category, LobWarning)]
    assert any(f"a.csv.lfidx: corrupt: {why}" in t and "rebuilding" in t for t in text), text
    check_window(ti, ref, int(ref["timestamp"][10]), int(ref["timestamp"][1500]))
    if kind == "directory":
        assert any("kept in memory" in t for t in text)
    else:
        assert os.path.isfile(side) and not os.path.islink(side)
        assert status(TimeIndex(path)) == "loaded"


def test_index_build_line_over_max_line(tmp_path):
    path, _ = simple_csv(tmp_path / "a.csv", n=100)
    text = path.read_bytes()
    start = len(text)
    path.write_bytes(text + b"1723161256000000," + b"9" * 5000 + b",x\n")
    with pytest.raises(LobError, match=rf"a\.csv, line 102 \(byte {start}\): the line is longer than max_line=1000"):
        TimeIndex(path, max_line=1000)
    assert TimeIndex(path, max_line=6000).rows == 101
    with pytest.raises(ValueError, match="max_line"):
        TimeIndex(path, max_line=0)


@pytest.mark.parametrize("compress", ["plain", "gzip"])
@pytest.mark.filterwarnings("ignore:gzip files cannot be read from the middle")
def test_last_line_being_written_is_left_out_of_the_index(tmp_path, compress):
    path, ref = simple_csv(tmp_path / "a.csv", n=1000)
    text = path.read_bytes()
    data = text + b"17231612"  # the writer is in the middle of the next row's time
    p = tmp_path / ("b.csv" + (".gz" if compress == "gzip" else ""))
    p.write_bytes(gzip.compress(data) if compress == "gzip" else data)
    with pytest.warns(LobWarning, match=rf"the last line \(byte {len(text)}, 8 bytes\) has no newline"):
        ti = TimeIndex(p, block=512)
    assert ti.rows == 1000
    check_window(ti, ref, None, None)
    p.write_bytes(text + b"1723161256000000,1.5,y")  # a complete last row without a newline is kept
    assert TimeIndex(p, block=512).rows == 1001


@needs_zstd
@pytest.mark.parametrize("compress", ["gzip", "zstd"])
@pytest.mark.filterwarnings("ignore:gzip files cannot be read from the middle")
def test_junk_after_compressed_data_is_left_out_of_the_index(tmp_path, compress):
    path, ref = simple_csv(tmp_path / "a.csv", n=3000)
    text = path.read_bytes()
    packed = gzip.compress(text) if compress == "gzip" else zstd_frames([text[:30_000], text[30_000:]])
    p = tmp_path / "j.csv.x"
    p.write_bytes(packed + b"\0" * 512)
    with pytest.warns(LobWarning, match=rf"the bytes from byte {len(packed)} on are not compressed data"):
        ti = TimeIndex(p, block=1024)
    check_window(ti, ref, None, None)
    check_window(ti, ref, int(ref["timestamp"][2000]), None)


def test_nat_window_is_refused(tmp_path):
    path, _ = simple_csv(tmp_path / "a.csv", n=100)
    ti = TimeIndex(path)
    for nat in (np.datetime64("NaT"), pd.NaT, np.iinfo(np.int64).min):
        with pytest.raises(ValueError, match="NaT"):
            ti.read(nat, None)
        with pytest.raises(ValueError, match="NaT"):
            ti.read(None, nat)


def constant_time_gzip(path: Path, member_mb: int, members: int) -> None:
    """members * member_mb MiB of CSV rows all at one time (sorted) as concatenated gzip members."""
    row = b"1723161255000000,1.5,x\n"
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    member = z.compress(b"timestamp,price,tag\n" + row * ((member_mb << 20) // len(row))) + z.flush()
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    rest = z.compress(row * ((member_mb << 20) // len(row))) + z.flush()
    path.write_bytes(member + rest * (members - 1))


@pytest.mark.filterwarnings("ignore:gzip files cannot be read from the middle")
def test_ctrl_c_stops_an_index_build_without_leaking(tmp_path):
    import time

    one, many = tmp_path / "one.csv.gz", tmp_path / "many.csv.gz"
    constant_time_gzip(one, 64, 1)
    constant_time_gzip(many, 64, 100)  # 6.4 GiB of text
    t = time.perf_counter()
    assert TimeIndex(one).rows > 0
    full = 100 * (time.perf_counter() - t)
    fds = len(os.listdir("/proc/self/fd"))
    for call in (lambda: TimeIndex(many), lambda: lobfast.convert(many, tmp_path / "out.zst")):
        assert interrupted(call) < 0.5 * full
        assert len(os.listdir("/proc/self/fd")) == fds
    assert not os.path.exists(sidecar_path(str(many)))
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["one.csv.gz", "one.csv.gz.lfidx", "many.csv.gz"]
    )  # convert left nothing


# ---------------------------------------------------------------------------- one C index


def count_index_calls(monkeypatch) -> dict[str, int]:
    """Count every call into the C index: lobfast._core.TimeIx (adopting entries, build and
    each method) and head, by name."""
    calls: dict[str, int] = {}
    real = lobfast._core.TimeIx

    def tick(name):
        calls[name] = calls.get(name, 0) + 1

    class Counted:
        layout = staticmethod(real.layout)

        def __init__(self, *args, **kw):
            tick("TimeIx")
            self._ix = real(*args, **kw)

        @classmethod
        def build(cls, *args, **kw):
            tick("build")
            ix = real.build(*args, **kw)
            if ix is None:
                return None
            out = cls.__new__(cls)
            out._ix = ix
            return out

        @classmethod
        def adopt(cls, *args, **kw):
            tick("adopt")
            ix, found = real.adopt(*args, **kw)
            out = cls.__new__(cls)
            out._ix = ix
            return out, found

        def __getattr__(self, name):
            attr = getattr(self._ix, name)
            if not callable(attr):
                return attr  # entries, info, path: read, not called

            def call(*args, **kw):
                tick(name)
                return attr(*args, **kw)

            return call

    head = lobfast._core.head

    def counted_head(*args):
        tick("head")
        return head(*args)

    monkeypatch.setattr(lobfast._core, "TimeIx", Counted)
    monkeypatch.setattr(lobfast._core, "head", counted_head)
    return calls


def test_read_binance_window_finds_each_file_in_one_index_call(tmp_path, monkeypatch):
    """read_binance(paths, start=, end=) opens each file's index (built the first time,
    adopted from its sidecar after) and finds the window's bytes in one call; a gzip file is
    recognised by the C index (no sidecar is made) and read through."""
    lines = gzip.decompress(SPOT_BTC_0808.read_bytes()).splitlines(keepends=True)[:9000]
    plain, zst, gz = tmp_path / "a.txt", tmp_path / "b.zst", tmp_path / "c.gz"
    plain.write_bytes(b"".join(lines[:3000]))
    (tmp_path / "b.txt").write_bytes(b"".join(lines[3000:6000]))
    lobfast.convert(tmp_path / "b.txt", zst, frame=10**7)
    os.unlink(tmp_path / "b.txt")
    gz.write_bytes(gzip.compress(b"".join(lines[6000:])))
    times = [int(line.split(b" ", 1)[0]) for line in lines]
    start, end = times[1500], times[7500]
    paths = [str(plain), str(zst), str(gz)]
    want = lobfast.read_binance(paths)
    calls = count_index_calls(monkeypatch)
    got = lobfast.read_binance(paths, start=start, end=end)
    assert calls == {"build": 3, "window": 2}  # the gzip file: recognised, not indexed
    assert not os.path.exists(sidecar_path(str(gz)))
    calls.clear()
    again = lobfast.read_binance(paths, start=start, end=end)
    assert calls == {"adopt": 2, "build": 1}  # the index adopted from its sidecar and the window found at once
    keep = (want.trades.local_ts >= start) & (want.trades.local_ts < end)
    for md in (got, again):
        assert len(md.trades) == np.count_nonzero(keep) > 0
        assert np.array_equal(md.trades.trade_id, want.trades.trade_id[keep])


def test_window_of_many_rotated_files_is_one_lookup_each(depth_csv, tmp_path, monkeypatch):
    """A TimeIndex window looks each file it touches up once (then cuts it into pieces for
    the threads), and no other file."""
    path, _, ref = depth_csv
    lines = Path(path).read_text().splitlines(keepends=True)
    parts = [lines[1 + k * 4000 : 1 + (k + 1) * 4000] for k in range(5)]
    for k, part in enumerate(parts):
        write_text(tmp_path / f"d{k}.csv", lines[0] + "".join(part))
    calls = count_index_calls(monkeypatch)
    ti = TimeIndex(str(tmp_path / "d*.csv"))
    calls.clear()
    ts = ref["timestamp"]
    t0, t1 = int(ts[4500]), int(ts[11_000])  # in files 1 and 2
    got = ti.read(t0, t1)
    assert calls == {"window": 2, "pieces": 2}
    assert np.array_equal(got["timestamp"], ts[(ts >= t0) & (ts < t1)])


def test_entries_are_the_c_layout_checked_at_import(tmp_path, monkeypatch):
    path, _ = simple_csv(tmp_path / "a.csv")
    entries = TimeIndex(path, block=256).files[0].entries
    assert entries.dtype == lobfast.timeindex.ENTRY and entries.dtype.names == (
        "ts",
        "line",
        "row",
        "d_off",
        "c_off",
        "d_at",
    )
    assert not entries.flags.writeable
    size, fields = lobfast._core.TimeIx.layout()
    moved = (size, (fields[1], fields[0], *fields[2:]))
    monkeypatch.setattr(lobfast._core.TimeIx, "layout", staticmethod(lambda: moved))
    with pytest.raises(ImportError, match="differ from ENTRY"):
        lobfast.timeindex._check_against_core()


def test_entries_of_another_layout_are_refused(tmp_path):
    path, _ = simple_csv(tmp_path / "a.csv")
    f = TimeIndex(path, block=256).files[0]
    key, info = f.key, f.info
    plain = np.ascontiguousarray(f.entries).view("<i8").reshape(-1, 6)
    for bad in (
        plain,
        plain.astype("<i4"),
        np.asarray(f.entries)[::2],
        f.entries.astype(f.entries.dtype.newbyteorder()),
        np.frombuffer(b"\0" + f.entries.tobytes(), f.entries.dtype, offset=1),  # unaligned
    ):
        with pytest.raises(TypeError, match="entry dtype"):
            lobfast._core.TimeIx(str(path), key, bad, info)
    with pytest.raises(ValueError, match="info has no 'rows'"):
        lobfast._core.TimeIx(str(path), key, f.entries, {k: v for k, v in info.items() if k != "rows"})
    with pytest.raises(ValueError, match="compression"):
        lobfast._core.TimeIx(str(path), key, f.entries, {**info, "compression": 7})
