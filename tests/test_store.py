"""The store (lobfast.store, ``lobfast process``): equal to one sequential pass row for row,
identical from the local pool, one process and a Dask cluster, incremental, atomic, locked,
and a bad file fails only its partitions."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lobfast
from lobfast import datasets, sim, store
from lobfast.labels import combine, forward_return, smoothed

pq = pytest.importorskip("pyarrow.parquet")

SYMBOLS = ["AAAUSDT", "BBBUSDT"]
PARAMS = dict(levels=5, every="10s", labels="ret_3,ret_60s,smooth_5,smooth_mean_4", bars="1min", quiet=True)
DATES = ["2024-01-01", "2024-01-02", "2024-01-03"]
ROOT = Path(__file__).resolve().parents[1]


def _flow():
    """The calibrated spot flow slowed down 300-fold: two days of three symbols in seconds."""
    flow = sim.calibrate(lobfast.read_binance(datasets.path("spot_btcusdt_20240808")))
    rates = ["limit_rate", "limit_count", "cancel_rate", "cancel_count", "market_rate", "trade_rate"]
    rates += ["birth_rate", "join_rate", "death_rate", "mid_move_rate"]
    return dataclasses.replace(flow, **{r: getattr(flow, r) * 0.003 for r in rates})


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A recorder tree: 2 symbols x 32 h from 2024-01-01 20:00 (3 UTC days), hourly files, a
    REST snapshot every 15 minutes."""
    root = tmp_path_factory.mktemp("rec") / "tree"
    flow = _flow()
    for i, sym in enumerate(SYMBOLS):
        m = sim.simulate("32h", flow=flow, seed=i, update_every="10s", levels=12, symbol=sym, start="2024-01-01T20:00")
        m.write_tree(root, rotate="1h", snapshot_every="15min")
    return root


def _files(tree: Path, sym: str) -> list[str]:
    return sorted(str(p) for p in (tree / "spot" / sym.lower()).glob("*.zst"))


def _copy_tree(tree: Path, dst: Path) -> Path:
    shutil.copytree(tree, dst, ignore=shutil.ignore_patterns("*.lfidx"))
    return dst


def _reference(files: list[str]) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """One sequential in-memory pass: read all, rebuild, features, labels, bars; cut per day."""
    md = lobfast.read_binance(files)
    return _reference_of(lobfast.reconstruct(md.depth, levels=5, every="10s"), md.trades, md.quotes)


def _reference_of(book, trades, quotes=None) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The grid book's features, labels, bars, trades (and quotes) as PARAMS make them, cut per day."""
    spec = store.make_spec(5, "10s", "default", PARAMS["labels"], "1min")
    ff = lobfast.features(book, trades, spec=list(spec.features))
    lf = combine(forward_return(book, [3, "60s"]), smoothed(book, 5), smoothed(book, 4, against="mean"))
    bars = lobfast.aggregate(book, trades, every="1min")
    out = {}
    for date in DATES:
        d0 = lobfast.to_ns(date)
        cut = lambda ts, d0=d0: (ts >= d0) & (ts < d0 + store.DAY)  # noqa: E731
        b = cut(book.ts)
        t = {"book": {"ts": book.ts[b], "valid": book.valid[b].astype(float), "update_id": book.update_id[b]}}
        for side in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
            for k in range(5):
                t["book"][f"{side}_{k + 1}"] = getattr(book, side)[b, k]
        t["features"] = {"ts": ff.ts[b], **{n: a[b] for n, a in ff.items()}}
        t["labels"] = {"ts": lf.ts[b], **{n: a[b] for n, a in lf.items()}}
        t["labels"].update({f"{n}_known_at": lf.known_at[n][b] for n in lf})
        c = cut(bars.ts)
        t["bars"] = {"ts": bars.ts[c], **{n: a[c] for n, a in bars.items()}}
        c = cut(trades.ts)
        t["trades"] = {n: a[c] for n, a in trades.columns.items()}
        if quotes is not None:
            c = cut(quotes.ts)
            t["quotes"] = {n: a[c] for n, a in quotes.columns.items()}
        out[date] = t
    return out


def _stored(path, table: str, sym: str, date: str) -> dict[str, np.ndarray]:
    f = lobfast.open_store(path).load(table, sym, date, np.datetime64(date) + np.timedelta64(1, "D"))
    return {"ts": f.ts, **f.columns}


# sliding sums and deviations carry the rounding of the rows before them (compensated, so a
# few ulps): they match to rounding, everything else bit for bit
SLIDING = re.compile(r"(ofi_w\d+|ofi_\d.*[a-z]|vol_.*|intensity_.*|smooth_.*)")


def _assert_same(got: dict, want: dict, what: str) -> None:
    assert set(got) == set(want), what
    for n in want:
        g, w = np.asarray(got[n], float), np.asarray(want[n], float)
        if SLIDING.fullmatch(n) and not n.endswith("_known_at"):
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{what}: {n} (NaN)")
            scale = np.nanmax(np.abs(w), initial=0.0)
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-12 * scale, equal_nan=True, err_msg=f"{what}: {n}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{what}: {n}")


def _snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every Parquet file of a store: (mtime_ns, content)."""
    return {str(p.relative_to(path)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(path.rglob("*.parquet"))}


def _tables(path: Path) -> dict[str, object]:
    """Every partition file's rows (not its bytes: the metadata holds no times, but be safe)."""
    return {str(p.relative_to(path)): pq.read_table(p) for p in sorted(path.rglob("part-0.parquet"))}


def _assert_same_store(path: Path, other: Path) -> None:
    """The same partitions, schemas (metadata included) and values (NaN equal to NaN)."""
    a, b = _tables(path), _tables(other)
    assert a.keys() == b.keys()
    for k, t in a.items():
        assert t.schema.equals(b[k].schema, check_metadata=True), k
        for name in t.column_names:
            np.testing.assert_array_equal(t[name].to_numpy(), b[k][name].to_numpy(), err_msg=f"{k}: {name}")


@pytest.fixture(scope="module")
def built(tree, tmp_path_factory) -> Path:
    """The store of the tree, from the local pool (2 workers)."""
    out = tmp_path_factory.mktemp("store") / "s"
    summary = store.process(tree, out, workers=2, **PARAMS)
    assert summary.ok and summary.written == 6 and not summary.warned, str(summary)
    return out


# ----------------------------------------------------------------------------- equality


def test_store_equals_one_sequential_pass(tree, built):
    for sym in SYMBOLS:
        ref = _reference(_files(tree, sym))
        for date in DATES:
            for table in ("book", "features", "labels", "bars", "trades", "quotes"):
                _assert_same(_stored(built, table, sym, date), ref[date][table], f"{sym} {date} {table}")
            assert len(ref[date]["book"]["ts"]) > 1000


def test_days_cross_midnight_with_their_warm_up_and_labels(built):
    """The first rows of a day carry full windows, the last rows labels reaching into the next
    day; the last day's labels end in NaN (the end of the data)."""
    f = lobfast.open_store(built).load("features", "AAAUSDT", "2024-01-02", "2024-01-03")
    assert np.isfinite(f["vol_100"][0]) and np.isfinite(f["ofi_10s"][0])
    lab = lobfast.open_store(built).load("labels", "AAAUSDT", "2024-01-02", "2024-01-03")
    assert np.isfinite(lab["ret_60s"][-1]) and np.isfinite(lab["smooth_5"][-1])
    last = lobfast.open_store(built).load("labels", "AAAUSDT", "2024-01-03", "2024-01-04")
    assert np.isnan(last["ret_60s"][-1])


def test_parquet_layout_and_metadata(built):
    part = built / "book" / "venue=spot" / "symbol=AAAUSDT" / "date=2024-01-02" / "part-0.parquet"
    f = pq.ParquetFile(part)
    meta = {k.decode(): v.decode() for k, v in f.schema_arrow.metadata.items()}
    assert meta["lobfast_version"] == lobfast.__version__ and meta["lobfast_table"] == "book"
    assert json.loads(meta["lobfast_params"])["every_ns"] == 10 * 10**9
    assert "quote currency" in meta["lobfast_units"]
    assert f.metadata.row_group(0).column(0).compression == "ZSTD"
    assert str(f.schema_arrow.field("ts").type) == "timestamp[ns, tz=UTC]"
    assert f.schema_arrow.names[:4] == ["ts", "update_id", "valid", "bid_px_1"]
    m = lobfast.open_store(built).partitions.to_pylist()
    assert len(m) == 6 and {r["status"] for r in m} == {"ok"}
    row = m[0]
    assert row["params_hash"] and row["version"] == lobfast.__version__ and row["rows_book"] > 0
    assert all({"path", "size", "mtime_ns", "fingerprint"} <= set(i) for i in row["inputs"])


def test_reading_back(built):
    st = lobfast.open_store(built)
    several = st.load("book", ["AAAUSDT", "BBBUSDT"], "2024-01-02T00:00", "2024-01-02T01:00", columns=["bid_px_1"])
    assert set(several) == {"AAAUSDT", "BBBUSDT"}
    f = several["AAAUSDT"]
    assert list(f) == ["bid_px_1"] and len(f) == 360 and f.ts[0] == lobfast.to_ns("2024-01-02")
    assert len(st.load("trades", "AAAUSDT").to_pandas()) == sum(
        r["rows_trades"] for r in st.partitions.to_pylist() if r["symbol"] == "AAAUSDT"
    )
    pl = pytest.importorskip("polars")
    lazy = st.scan("features")
    n = lazy.filter(pl.col("symbol") == "BBBUSDT").select(pl.len()).collect().item()
    assert n == sum(r["rows_features"] for r in st.partitions.to_pylist() if r["symbol"] == "BBBUSDT")
    pytest.importorskip("dask.dataframe")
    assert len(st.to_dask("bars")) == sum(r["rows_bars"] for r in st.partitions.to_pylist())


def test_dask_cluster_gives_the_same_store_also_when_a_worker_dies(tree, built, tmp_path):
    """A real LocalCluster of 2 worker processes; then the same with one worker killed
    (SIGKILL) once the first partition is written: its task runs again elsewhere."""
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "dask"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        with distributed.Client(c) as client:
            summary = store.process(tree, out, client=client, **PARAMS)
            assert summary.ok and summary.written == 6
            _assert_same_store(out, built)

            killed = tmp_path / "killed"
            pids = list(client.run(os.getpid).values())
            with concurrent.futures.ThreadPoolExecutor(1) as ex:
                run = ex.submit(store.process, tree, killed, client=client, **PARAMS)
                deadline = time.monotonic() + 60
                while not list(killed.rglob("part-0.parquet")) and time.monotonic() < deadline:
                    time.sleep(0.005)
                os.kill(pids[0], signal.SIGKILL)
                summary = run.result(timeout=120)
    assert summary.ok and summary.written == 6, str(summary)
    for f in killed.rglob("*.tmp"):  # a write the kill cut short: hidden, removed by the next run
        assert f.name.startswith(".")
    _assert_same_store(killed, built)


def test_one_process_gives_the_same_store(tree, built, tmp_path, monkeypatch):
    """Also when a task reads in small chunks: the day's quotes are then written as they come,
    in many row groups, and the values are the same."""
    monkeypatch.setattr(store, "CHUNK_ROWS", 5_000)
    out = tmp_path / "one"
    assert store.process(tree, out, workers=1, **PARAMS).ok
    _assert_same_store(out, built)
    quotes = next(out.rglob("quotes/**/part-0.parquet"))
    assert pq.ParquetFile(quotes).metadata.num_row_groups > 1


# ----------------------------------------------------------------------------- incremental


def test_rerun_does_nothing_and_a_changed_file_redoes_its_partitions(tree, tmp_path):
    src = _copy_tree(tree, tmp_path / "tree")
    out = tmp_path / "s"
    assert store.process(src, out, workers=1, **PARAMS).written == 6
    before, manifest = _snapshot(out), (out / "_manifest.parquet").read_bytes()
    again = store.process(src, out, workers=1, **PARAMS)
    assert (again.written, again.up_to_date) == (0, 6)
    assert _snapshot(out) == before and (out / "_manifest.parquet").read_bytes() == manifest

    # a file in the middle of 2024-01-02: that day only
    f = src / "spot" / "bbbusdt" / "20240102-120000.000.zst"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    redo = store.process(src, out, workers=1, **PARAMS)
    assert (redo.written, redo.up_to_date) == (1, 5)
    after = _snapshot(out)
    changed = {k for k in after if after[k][0] != before[k][0]} - {"_manifest.parquet"}
    assert changed and all("symbol=BBBUSDT/date=2024-01-02" in k for k in changed)

    # the first file after midnight: its day and the day before (labels reach into it)
    f = src / "spot" / "aaausdt" / "20240103-000000.000.zst"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    redo = store.process(src, out, workers=1, **PARAMS)
    assert (redo.written, redo.up_to_date) == (2, 4)


def test_a_new_day_file_adds_its_partition_and_redoes_the_day_before(tree, tmp_path):
    src = _copy_tree(tree, tmp_path / "tree")
    held = tmp_path / "held"
    held.mkdir()
    late = sorted((src / "spot" / "bbbusdt").glob("20240103-*.zst"))
    for p in late:
        p.rename(held / p.name)
    out = tmp_path / "s"
    first = store.process(src, out, workers=1, **PARAMS)
    assert first.written == 5  # BBBUSDT without 2024-01-03
    for p in late:
        (held / p.name).rename(src / "spot" / "bbbusdt" / p.name)
    more = store.process(src, out, workers=1, **PARAMS)
    assert (more.written, more.up_to_date) == (2, 4)
    ref = _reference(_files(tree, "BBBUSDT"))
    for date in ("2024-01-02", "2024-01-03"):
        _assert_same(_stored(out, "labels", "BBBUSDT", date), ref[date]["labels"], date)


def test_sparse_snapshots_and_a_hole_in_the_data(tmp_path):
    """A snapshot only every 5 h: a day's warm-up starts in a file without one, so its task
    reads from earlier files until the book is known; and two hours missing after midnight: the
    day before reads on to the next file for its labels (the sequential pass carries the book
    over the hole).  Still the sequential pass, row for row."""
    m = sim.simulate(
        "32h", flow=_flow(), seed=7, update_every="10s", levels=12, symbol="DDDUSDT", start="2024-01-01T20:00"
    )
    files = m.write_tree(tmp_path / "tree", rotate="1h", snapshot_every="5h")
    for f in files:
        if os.path.basename(f).startswith(("20240103-00", "20240103-01")):
            os.unlink(f)
    files = [f for f in files if os.path.exists(f)]
    out = tmp_path / "s"
    assert store.process(tmp_path / "tree", out, workers=1, **PARAMS).written == 3
    parts = lobfast.open_store(out).partitions.to_pylist()
    inputs = {p["date"]: sorted(os.path.basename(i["path"]) for i in p["inputs"]) for p in parts}
    assert inputs["2024-01-03"][0] < "20240102-2"  # read from hours before the warm-up's start
    assert inputs["2024-01-02"][-1].startswith("20240103-02")  # on past the hole for the labels
    ref = _reference(files)
    for date in DATES:
        for table in ("book", "features", "labels", "bars", "trades"):
            _assert_same(_stored(out, table, "DDDUSDT", date), ref[date][table], f"{date} {table}")


def _rewrite(tree: Path, dst: Path, keep) -> None:
    """AAAUSDT's recordings as plain text under dst, with only the lines ``keep`` accepts."""
    folder = dst / "spot" / "aaausdt"
    folder.mkdir(parents=True)
    zstandard = pytest.importorskip("zstandard")
    for f in _files(tree, "AAAUSDT"):
        with open(f, "rb") as raw:
            text = zstandard.ZstdDecompressor().stream_reader(raw).read().decode()
        (folder / Path(f).name.replace(".zst", ".txt")).write_text(
            "".join(line + "\n" for line in text.splitlines() if keep(line))
        )


def test_a_recording_of_trades_only_gives_empty_book_tables(tree, tmp_path):
    """A recorder of the trade stream alone: trades are stored, the book tables are empty
    partitions with their columns (no book, no features, no labels), not failures."""
    _rewrite(tree, tmp_path / "tree", lambda line: "@trade" in line)
    out = tmp_path / "s"
    summary = store.process(tmp_path / "tree", out, workers=1, **PARAMS)
    assert summary.ok and summary.written == 3, str(summary)
    st = lobfast.open_store(out)
    assert sum(r["rows_book"] + r["rows_features"] + r["rows_labels"] for r in st.partitions.to_pylist()) == 0
    assert sum(r["rows_trades"] for r in st.partitions.to_pylist()) > 1000
    assert {"ret_60s", "smooth_5", "ret_60s_known_at"} <= set(st.load("labels", "AAAUSDT").keys())
    assert "ofi_10s" in st.load("features", "AAAUSDT")
    # written, and said: a day without a valid book is not silent
    assert sorted(p for p, _ in summary.warned) == [f"spot/AAAUSDT/{d}" for d in DATES], str(summary)
    assert all("no valid book row in the day" in w for _, w in summary.warned)
    assert all("no valid book row in the day" in r["warnings"] for r in st.partitions.to_pylist())


def test_a_day_whose_depth_never_syncs_is_written_with_a_warning(tree, tmp_path):
    """Depth without any REST snapshot: the book is never valid; the partitions are written
    (trades and quotes are good) and each says that its day has no valid book row."""
    _rewrite(tree, tmp_path / "tree", lambda line: "lastUpdateId" not in line)
    summary = store.process(tmp_path / "tree", tmp_path / "s", workers=1, **PARAMS)
    assert summary.ok and summary.written == 3, str(summary)
    assert sorted(p for p, _ in summary.warned) == [f"spot/AAAUSDT/{d}" for d in DATES], str(summary)
    assert "warning spot/AAAUSDT/" in str(summary) and "its depth never synced" in str(summary)
    st = lobfast.open_store(tmp_path / "s")
    assert not st.load("book", "AAAUSDT")["valid"].any()
    assert sum(r["rows_quotes"] for r in st.partitions.to_pylist()) > 1000


def test_other_parameters_are_refused_unless_rebuild(tree, built, tmp_path):
    out = tmp_path / "s"
    shutil.copytree(built, out)
    with pytest.raises(lobfast.LobError, match=r"other parameters \(levels: 5 in the store, 3 asked; .*rebuild=True"):
        store.process(tree, out, workers=1, **{**PARAMS, "levels": 3})
    summary = store.process(tree, out, workers=1, rebuild=True, **{**PARAMS, "levels": 3})
    assert summary.written == 6
    assert pq.read_schema(next(out.rglob("book/**/part-0.parquet"))).names[-1] == "ask_sz_3"


def test_store_spec_refuses_unbounded_look_back():
    with pytest.raises(ValueError, match="'ofi_cum' .* looks back without bound"):
        store.make_spec(features="mid,ofi_cum")
    with pytest.raises(ValueError, match="label 'ema_10': an EMA"):
        store.make_spec(labels="ema_10")
    with pytest.raises(ValueError, match="unknown store label 'foo_1'"):
        store.make_spec(labels="foo_1")
    with pytest.raises(ValueError, match="unknown feature 'nope'"):
        store.make_spec(features="nope")
    with pytest.raises(ValueError, match="every='7s' must divide a day"):
        store.make_spec(every="7s")
    assert "ofi_cum" not in store.make_spec().features and "ofi_10s" in store.make_spec().features
    spec = store.make_spec(levels=10, every="100ms", labels="ret_10s,smooth_100")
    assert spec.warmup == 60 * 10**9 + 10**8 + 2 * 10**8  # vol_60s and the row before, plus a row each side
    assert spec.reach == 10 * 10**9 + 2 * 10**8  # ret_10s = smooth_100 rows x 100 ms


# ----------------------------------------------------------------------------- faults


def _cli(*args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lobfast", "process", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120, **kw)  # fmt: skip


def test_a_bad_file_fails_its_partitions_and_a_rerun_retries_them(tree, built, tmp_path):
    src = _copy_tree(tree, tmp_path / "tree")
    bad = src / "spot" / "aaausdt" / "20240102-120000.000.zst"
    good = bad.read_bytes()
    bad.write_bytes(b"this is not a recording\n" * 100)
    out = tmp_path / "s"
    args = [src, "--out", out, "--levels", 5, "--every", "10s", "--labels", PARAMS["labels"], "--bars", "1min"]
    r = _cli(*args, "--workers", 1, "--quiet")
    assert r.returncode == 1, r.stderr
    assert "5 partition(s) written, 0 up to date, 1 failed" in r.stdout
    assert f"failed spot/AAAUSDT/2024-01-02: LobError: {bad}" in r.stdout
    rows = {(m["symbol"], m["date"]): m for m in lobfast.open_store(out).partitions.to_pylist()}
    failed = rows[("AAAUSDT", "2024-01-02")]
    assert failed["status"] == "failed" and failed["error"] == (
        f"LobError: {bad}, line 1 (byte 0): expected '<receive time in ns> <JSON message>', "
        "found 'this is not a recording'"
    )
    assert all(m["status"] == "ok" for k, m in rows.items() if k != ("AAAUSDT", "2024-01-02"))
    assert not (out / "book" / "venue=spot" / "symbol=AAAUSDT" / "date=2024-01-02").exists()

    bad.write_bytes(good)
    r = _cli(*args, "--workers", 1, "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 partition(s) written, 5 up to date, 0 failed" in r.stdout
    _assert_same_store(out, built)


def test_a_truncated_file_is_read_up_to_the_damage_with_a_warning(tree, tmp_path):
    src = _copy_tree(tree, tmp_path / "tree")
    f = src / "spot" / "bbbusdt" / "20240102-120000.000.zst"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    out = tmp_path / "s"
    summary = store.process(src, out, workers=1, **PARAMS)
    assert summary.ok
    rows = {(m["symbol"], m["date"]): m for m in lobfast.open_store(out).partitions.to_pylist()}
    row = rows[("BBBUSDT", "2024-01-02")]
    assert row["status"] == "ok" and "truncated" in row["warnings"]


def test_disk_full_fails_the_partition_and_leaves_nothing_half_written(tree, tmp_path, monkeypatch):
    """ENOSPC injected into the writer (no small filesystem can be mounted here)."""
    real = store._write_atomic
    calls = []

    def full(table, path):
        calls.append(path)
        if "symbol=BBBUSDT/date=2024-01-02" in path and "features" in path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(os.path.join(os.path.dirname(path), ".part-0.parquet.1.x.tmp"), "wb") as f:
                f.write(b"PAR1 half")  # what a write cut short leaves, hidden
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(table, path)

    monkeypatch.setattr(store, "_write_atomic", full)
    out = tmp_path / "s"
    summary = store.process(tree, out, workers=1, **PARAMS)
    assert [p for p, _ in summary.failed] == ["spot/BBBUSDT/2024-01-02"]
    assert "No space left on device" in summary.failed[0][1]
    assert not list(out.rglob("symbol=BBBUSDT/date=2024-01-02/*.parquet"))
    lobfast.open_store(out).load("book", "BBBUSDT")  # the dataset reads: nothing half-written is visible
    monkeypatch.setattr(store, "_write_atomic", real)
    again = store.process(tree, out, workers=1, **PARAMS)
    assert (again.written, again.up_to_date) == (1, 5) and again.ok
    assert not list(out.rglob("*.tmp"))


def test_disk_full_while_quotes_are_written_as_they_come(tree, tmp_path, monkeypatch):
    """The quotes of a day go to a hidden file chunk by chunk: a failure part-way leaves no
    partition file and no temporary file, and a rerun completes it."""
    real = store._DayWriter.add

    def add(self, columns):
        real(self, columns)
        if "symbol=BBBUSDT/date=2024-01-02" in self.path and self.rows:
            assert list(Path(self.path).parent.glob(".part-0.parquet.*.tmp"))  # written so far
            raise OSError(errno.ENOSPC, "No space left on device", self.path)

    monkeypatch.setattr(store._DayWriter, "add", add)
    monkeypatch.setattr(store, "CHUNK_ROWS", 5_000)
    out = tmp_path / "s"
    summary = store.process(tree, out, workers=1, **PARAMS)
    assert [p for p, _ in summary.failed] == ["spot/BBBUSDT/2024-01-02"]
    assert "No space left on device" in summary.failed[0][1]
    assert not list(out.rglob("symbol=BBBUSDT/date=2024-01-02/*.parquet"))
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(store._DayWriter, "add", real)
    again = store.process(tree, out, workers=1, **PARAMS)
    assert (again.written, again.up_to_date) == (1, 5) and again.ok


def test_a_second_run_is_refused_naming_the_holder(tree, tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    with store._Lock(str(out)):
        with pytest.raises(
            lobfast.LobError, match=rf"being written by another run: pid {os.getpid()} on {socket.gethostname()}"
        ):
            store.process(tree, out, workers=1, **PARAMS)
        r = _cli(tree, "--out", out, "--levels", 5, "--every", "10s", "--quiet")
        assert r.returncode == 1 and f"pid {os.getpid()} on {socket.gethostname()}" in r.stderr
    # a lock file left by a dead run (its pid is gone, the kernel dropped its flock): taken over
    (out / ".lock").write_text(json.dumps({"pid": 999_999_999, "host": socket.gethostname(), "since": "then"}))
    assert store.process(tree, out, workers=1, levels=5, every="10s", quiet=True, features=["mid"]).ok


def test_a_killed_run_leaves_no_half_partition_and_the_next_completes(tree, built, tmp_path):
    out = tmp_path / "s"
    args = [tree, "--out", out, "--levels", 5, "--every", "10s", "--labels", PARAMS["labels"], "--bars", "1min"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lobfast", "process", *map(str, args), "--workers", "1", "--quiet"]
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p = subprocess.Popen(cmd, env=env, start_new_session=True, **quiet)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.rglob("part-0.parquet"))) < 8:
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    for f in out.rglob("part-0.parquet"):
        pq.read_table(f)  # every visible file is whole
    summary = store.process(tree, out, workers=1, **PARAMS)
    assert summary.ok
    _assert_same_store(out, built)
    assert not list(out.rglob("*.tmp"))


def test_watch_processes_files_once_rotated(tree, tmp_path):
    src = tmp_path / "live"
    files = _files(tree, "AAAUSDT")
    folder = src / "spot" / "aaausdt"
    folder.mkdir(parents=True)
    for f in files[:6]:  # 20:00 .. 01:00: the recorder is writing the 01:00 file
        shutil.copy(f, folder)
    out = tmp_path / "s"
    s = store.process(src, out, watch=True, watch_iterations=1, workers=1, **PARAMS)
    assert s.written == 2  # 2024-01-01 and, from its first hour, 2024-01-02
    parts = lobfast.open_store(out).partitions.to_pylist()
    assert {p["date"] for p in parts} == {"2024-01-01", "2024-01-02"}
    assert all(os.path.basename(i["path"]) != os.path.basename(files[5]) for p in parts for i in p["inputs"])
    shutil.copy(files[6], folder)  # rotated: the 01:00 file is closed
    s = store.process(src, out, watch=True, watch_iterations=1, workers=1, **PARAMS)
    assert s.written == 1 and s.up_to_date == 1  # 2024-01-02 again, with the closed file


# ----------------------------------------------------------------------------- bad arguments


def test_missing_unreadable_and_not_recordings(tree, tmp_path):
    out = tmp_path / "s"
    with pytest.raises(FileNotFoundError, match=r"no such file or directory: '.*/nowhere'"):
        store.process(tmp_path / "nowhere", out, quiet=True)
    text = tmp_path / "notes.txt"
    text.write_text("hello\nworld\n")
    with pytest.raises(
        lobfast.LobError, match=r"notes.txt: not a recording: its first line is not '<receive time ns> <message>'"
    ):
        store.process(text, out, quiet=True)
    with pytest.raises(FileNotFoundError, match=r"no files match"):
        store.process(str(tmp_path / "*.zst"), out, quiet=True)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0)
        try:
            with pytest.raises(PermissionError, match="locked"):
                store.process(locked, out, quiet=True)
        finally:
            locked.chmod(0o755)
    busy = tmp_path / "home"
    busy.mkdir()
    (busy / "thesis.tex").write_text("...")
    with pytest.raises(lobfast.LobError, match=r"home is not empty and holds no lobfast store \(no _store.json\)"):
        store.process(tree, busy, quiet=True)
    assert os.listdir(busy) == ["thesis.tex"]
    with pytest.raises(
        lobfast.LobError, match=r"home is not a lobfast store \(it has no _store.json; make one with lobfast process\)"
    ):
        lobfast.open_store(busy)
    r = _cli(tmp_path / "nowhere", "--out", out)
    assert r.returncode == 1 and "lobfast process: [Errno 2] no such file or directory" in r.stderr


def test_a_venue_folder_and_a_symbol_folder(tree, built, tmp_path):
    """SRC may be one venue's folder of a tree (venue from its name) or one symbol's folder
    (a folder of recordings: venue and symbol from the data)."""
    out = tmp_path / "s"
    assert store.process([tree / "spot", tree / "spot" / "bbbusdt"], out, workers=1, **PARAMS).written == 6
    _assert_same_store(out, built)


def test_raw_files_take_venue_and_symbol_from_the_data(tree, built, tmp_path):
    out = tmp_path / "s"
    summary = store.process(str(tree / "spot" / "bbbusdt" / "*.zst"), out, workers=1, **PARAMS)
    assert summary.ok and summary.written == 3
    for date in DATES:
        got = _stored(out, "book", "BBBUSDT", date)
        _assert_same(got, _stored(built, "book", "BBBUSDT", date), date)


# ----------------------------------------------------------------------------- Tardis CSVs

TARDIS_LEVELS = 8  # the book_snapshot_N files' depth
HEADERS = {
    "incremental_book_L2": "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount",
    "trades": "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
    "book_ticker": "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount",
}


def _csv(path: Path, header: str, rows: list[str]) -> str:
    path.write_bytes(gzip.compress(("\n".join([header, *rows]) + "\n").encode(), mtime=0))
    return str(path)


def _num(a: np.ndarray) -> list[str]:
    return ["" if np.isnan(v) else repr(float(v)) for v in a]


def _write_tardis(tree: Path, root: Path) -> dict[str, list[str]]:
    """The tree's recordings as Tardis writes them: per UTC day of receive time, an
    incremental_book_L2 file opening with the book at midnight, book_snapshot_8 (the top 8
    levels after each message), trades and book_ticker; microseconds.  Returns the files of
    each data type."""
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[str]] = {}
    for sym in SYMBOLS:
        md = lobfast.read_binance(_files(tree, sym))
        d = md.depth[md.depth.side != 0]
        days = np.unique(d.local_ts // store.DAY)
        for day in days:
            date = str(np.datetime64(int(day), "D"))
            lo, hi = np.searchsorted(d.local_ts, [day * store.DAY, (day + 1) * store.DAY])
            rows = []
            if lo:  # the book at midnight: every level the messages before left
                builder = lobfast.BookBuilder(1000)
                builder.feed(d[:lo])
                bp, bs, ap, asz = (a.tolist() for a in builder.book())
                t_us, local_us = d.ts[lo - 1] // 1000, day * store.DAY // 1000
                for sd, px, sz in (("bid", bp, bs), ("ask", ap, asz)):
                    rows += [f"binance,{sym},{t_us},{local_us},true,{sd},{p!r},{q!r}" for p, q in zip(px, sz)]
            part = d[lo:hi]
            snap = np.where(part.flags & lobfast.Flags.SNAPSHOT, "true", "false")
            side = np.where(part.side > 0, "bid", "ask")
            rows += [
                f"binance,{sym},{t // 1000},{lt // 1000},{s},{sd},{p!r},{q!r}"
                for t, lt, s, sd, p, q in zip(
                    part.ts.tolist(), part.local_ts.tolist(), snap, side, part.price.tolist(), part.qty.tolist()
                )
            ]
            out.setdefault("incremental_book_L2", []).append(
                _csv(root / f"binance_incremental_book_L2_{date}_{sym}.csv.gz", HEADERS["incremental_book_L2"], rows)
            )
            tr = md.trades[(md.trades.local_ts // store.DAY) == day]
            rows = [
                f"binance,{sym},{t // 1000},{lt // 1000},{i},{'buy' if s > 0 else 'sell'},{p!r},{q!r}"
                for t, lt, i, s, p, q in zip(
                    tr.ts.tolist(), tr.local_ts.tolist(), tr.trade_id.tolist(), tr.side.tolist(),
                    tr.price.tolist(), tr.qty.tolist(),
                )
            ]  # fmt: skip
            out.setdefault("trades", []).append(
                _csv(root / f"binance_trades_{date}_{sym}.csv.gz", HEADERS["trades"], rows)
            )
            q = md.quotes[(md.quotes.local_ts // store.DAY) == day]
            rows = [
                f"binance,{sym},{t // 1000},{lt // 1000},{a},{b},{c},{e}"
                for t, lt, a, b, c, e in zip(
                    q.ts.tolist(), q.local_ts.tolist(), _num(q.ask_qty), _num(q.ask_px), _num(q.bid_px), _num(q.bid_qty)
                )
            ]
            out.setdefault("book_ticker", []).append(
                _csv(root / f"binance_book_ticker_{date}_{sym}.csv.gz", HEADERS["book_ticker"], rows)
            )
        # book_snapshot_8: the book after each message of the Tardis depth just written
        depth = lobfast.read_tardis([p for p in out["incremental_book_L2"] if p.endswith(f"_{sym}.csv.gz")])
        snaps = lobfast.reconstruct(depth, levels=TARDIS_LEVELS)  # one row per message
        local = depth.local_ts[depth.flags & lobfast.Flags.END_OF_MESSAGE > 0]  # its receive time
        assert len(local) == len(snaps)
        snaps, local = snaps[snaps.valid], local[snaps.valid]
        for day in np.unique(local // store.DAY):
            date = str(np.datetime64(int(day), "D"))
            k = local // store.DAY == day
            cols = ["exchange", "symbol", "timestamp", "local_timestamp"]
            cells = [
                [f"binance,{sym},{t // 1000},{lt // 1000}"] for t, lt in zip(snaps.ts[k].tolist(), local[k].tolist())
            ]
            for i in range(TARDIS_LEVELS):
                cols += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
                for row, a, b, c, e in zip(
                    cells,
                    _num(snaps.ask_px[k, i]),
                    _num(snaps.ask_sz[k, i]),
                    _num(snaps.bid_px[k, i]),
                    _num(snaps.bid_sz[k, i]),
                ):
                    row.append(f"{a},{b},{c},{e}")
            out.setdefault(f"book_snapshot_{TARDIS_LEVELS}", []).append(
                _csv(
                    root / f"binance_book_snapshot_{TARDIS_LEVELS}_{date}_{sym}.csv.gz",
                    ",".join(cols),
                    [",".join(r) for r in cells],
                )
            )
    return out


@pytest.fixture(scope="module")
def tardis(tree, tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("tardis") / "csv"
    return root, _write_tardis(tree, root)


def _of(files: list[str], sym: str) -> list[str]:
    return [f for f in files if f.endswith(f"_{sym}.csv.gz")]


@pytest.mark.parametrize("book_from", ["incremental_book_L2", f"book_snapshot_{TARDIS_LEVELS}"])
def test_a_store_of_tardis_files_equals_the_python_api(tardis, tmp_path, book_from):
    """incremental_book_L2 rebuilt through the book (each day's task starting from the
    previous day's midnight snapshot), or book_snapshot_N resampled to the grid and cut to the
    store's levels: the same rows as read_tardis -> reconstruct -> features / labels / bars
    over all the files."""
    root, files = tardis
    src = tmp_path / "csv"
    src.mkdir()
    for kind in (book_from, "trades", "book_ticker"):
        for f in files[kind]:
            os.link(f, src / os.path.basename(f))
    out = tmp_path / "s"
    summary = store.process(src, out, workers=2, **PARAMS)
    assert summary.ok and summary.written == 6, str(summary)
    assert {(m["venue"], m["symbol"], m["date"]) for m in lobfast.open_store(out).partitions.to_pylist()} == {
        ("binance", s, d) for s in SYMBOLS for d in DATES
    }
    for sym in SYMBOLS:
        book = lobfast.reconstruct(lobfast.read_tardis(_of(files[book_from], sym)), levels=5, every="10s")
        trades = lobfast.read_tardis(_of(files["trades"], sym))
        ref = _reference_of(book, trades, lobfast.read_tardis(_of(files["book_ticker"], sym)))
        for date in DATES:
            for table in ("book", "features", "labels", "bars", "trades", "quotes"):
                _assert_same(_stored(out, table, sym, date), ref[date][table], f"{sym} {date} {table}")
            assert len(ref[date]["book"]["ts"]) > 1000 and ref[date]["book"]["valid"].mean() > 0.9


def _tardis_src(tardis, dst: Path, *kinds: str) -> Path:
    """A folder with copies of the Tardis files of these data types."""
    dst.mkdir()
    for kind in kinds:
        for f in tardis[1][kind]:
            shutil.copy(f, dst / os.path.basename(f))
    return dst


def test_a_bad_tardis_file_fails_the_partitions_that_read_it(tardis, tmp_path):
    """The day's file is read by its day, the next day (the warm-up, from its midnight
    snapshot) and the day before (the labels' reach): those fail with the reader's error; a
    rerun after the repair retries them."""
    src = _tardis_src(tardis, tmp_path / "csv", "incremental_book_L2", "trades", "book_ticker")
    bad = src / "binance_incremental_book_L2_2024-01-02_AAAUSDT.csv.gz"
    good = bad.read_bytes()
    lines = gzip.decompress(good).decode().splitlines()
    lines[3] = lines[3].replace(",bid,", ",middle,").replace(",ask,", ",middle,")
    bad.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    out = tmp_path / "s"
    summary = store.process(src, out, workers=1, **PARAMS)
    want = lobfast.LobError
    with pytest.raises(want) as err:
        lobfast.read_tardis(str(bad))
    assert str(err.value).startswith(f"{bad}, line 4 ")
    failed = {p: why for p, why in summary.failed}
    assert failed == {f"binance/AAAUSDT/{d}": f"LobError: {err.value}" for d in DATES}
    assert summary.written == 3  # BBBUSDT
    rows = {(m["symbol"], m["date"]): m for m in lobfast.open_store(out).partitions.to_pylist()}
    assert rows[("AAAUSDT", "2024-01-02")]["error"] == f"LobError: {err.value}"
    assert not (out / "book" / "venue=binance" / "symbol=AAAUSDT").exists()
    bad.write_bytes(good)
    again = store.process(src, out, workers=1, **PARAMS)
    assert again.ok and again.written == 3 and again.up_to_date == 3, str(again)


def test_a_missing_tardis_book_file_fails_its_day_only(tardis, tmp_path):
    src = _tardis_src(tardis, tmp_path / "csv", "incremental_book_L2", "trades", "book_ticker")
    gone = src / "binance_incremental_book_L2_2024-01-02_BBBUSDT.csv.gz"
    gone.unlink()
    # AAAUSDT's 2024-01-02 holds only a data type its other days' book does not come from
    other = src / "binance_incremental_book_L2_2024-01-02_AAAUSDT.csv.gz"
    for f in src.glob("*_2024-01-02_AAAUSDT.csv.gz"):
        f.unlink()
    shutil.copy(_of(tardis[1][f"book_snapshot_{TARDIS_LEVELS}"], "AAAUSDT")[1], src)
    summary = store.process(src, tmp_path / "s", workers=1, **PARAMS)
    assert summary.written == 4 and sorted(summary.failed) == [
        (
            "binance/AAAUSDT/2024-01-02",
            f"LobError: {other}: missing: the book of binance AAAUSDT comes from its incremental_book_L2 files, "
            f"and 2024-01-02 has only book_snapshot_{TARDIS_LEVELS}",
        ),
        (
            "binance/BBBUSDT/2024-01-02",
            f"LobError: {gone}: missing: the book of binance BBBUSDT comes from its incremental_book_L2 files, "
            "and 2024-01-02 has only book_ticker, trades",
        ),
    ]
    # the next day starts from its own midnight snapshot: its book is whole
    book = lobfast.open_store(tmp_path / "s").load("book", "BBBUSDT", "2024-01-03", "2024-01-04")
    assert len(book) > 1000 and book["valid"].all()


def test_tardis_snapshots_shallower_than_the_store_and_other_data_types(tardis, tmp_path):
    src = _tardis_src(tardis, tmp_path / "csv", f"book_snapshot_{TARDIS_LEVELS}", "trades")
    (src / "binance_derivative_ticker_2024-01-02_AAAUSDT.csv.gz").write_bytes(gzip.compress(b""))
    (src / "binance_trades_2024-13-45_AAAUSDT.csv.gz").write_bytes(gzip.compress(b""))
    summary = store.process(src, tmp_path / "s", workers=1, **{**PARAMS, "levels": 10})
    assert summary.written == 0 and len(summary.failed) == 6
    path = src / "binance_book_snapshot_8_2024-01-02_AAAUSDT.csv.gz"
    assert dict(summary.failed)["binance/AAAUSDT/2024-01-02"] == (
        f"LobError: {path}: book_snapshot_8 holds 8 levels per side, fewer than the store's levels=10 "
        "(deeper levels are unknown): make the store with fewer levels"
    )
    assert summary.errors == [
        f"{src / 'binance_derivative_ticker_2024-01-02_AAAUSDT.csv.gz'}: Tardis data type 'derivative_ticker' is "
        "not one the store takes (incremental_book_L2, book_snapshot_<N>, trades, quotes, book_ticker)",
        f"{src / 'binance_trades_2024-13-45_AAAUSDT.csv.gz'}: the date in its name: cannot read '2024-13-45' as a "
        "time for date (int ns, ISO string, datetime, datetime64)",
    ]


def test_an_empty_tardis_file_is_a_day_without_those_rows(tardis, tmp_path):
    """Tardis publishes an empty gzip for a day without data."""
    src = _tardis_src(tardis, tmp_path / "csv", "incremental_book_L2", "trades")
    empty = src / "binance_trades_2024-01-02_AAAUSDT.csv.gz"
    empty.write_bytes(gzip.compress(b""))
    summary = store.process(src, tmp_path / "s", workers=1, **{**PARAMS, "features": "mid,spread"})
    assert summary.ok and summary.written == 6, str(summary)
    s = lobfast.open_store(tmp_path / "s")
    assert len(s.load("trades", "AAAUSDT", "2024-01-02", "2024-01-03")) == 0
    assert len(s.load("trades", "AAAUSDT", "2024-01-03", "2024-01-04")) > 0
    assert len(s.load("book", "AAAUSDT", "2024-01-02", "2024-01-03")) > 1000


def test_tardis_files_in_folders_and_beside_a_recorder_tree(tree, tardis, built, tmp_path):
    """Tardis CSVs are placed by their names wherever they lie below SRC, also inside a
    recorder tree, whose recordings give their own partitions."""
    src = _copy_tree(tree, tmp_path / "tree")
    for f in tardis[1]["incremental_book_L2"] + tardis[1]["trades"]:
        sym = os.path.basename(f).rsplit("_", 1)[1].split(".")[0]
        (src / "tardis" / "binance" / sym).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, src / "tardis" / "binance" / sym / os.path.basename(f))
    name = os.path.basename(tardis[1]["trades"][0])
    shutil.copy(tardis[1]["trades"][0], src / "spot" / "aaausdt" / name)  # a second copy: not placed
    out = tmp_path / "s"
    summary = store.process(src, out, workers=2, **PARAMS)
    assert summary.written == 12 and not summary.failed, str(summary)
    assert summary.errors == [
        f"{src / 'tardis' / 'binance' / 'AAAUSDT' / name}: the same exchange, data type, day and symbol as "
        f"{src / 'spot' / 'aaausdt' / name} (one is read)"
    ]
    parts = {(m["venue"], m["symbol"], m["date"]) for m in lobfast.open_store(out).partitions.to_pylist()}
    assert parts == {(v, s, d) for v in ("spot", "binance") for s in SYMBOLS for d in DATES}
    flat = tmp_path / "flat"
    flat_src = _tardis_src(tardis, tmp_path / "csv", "incremental_book_L2", "trades")
    assert store.process(flat_src, flat, workers=1, **PARAMS).written == 6
    both, one = lobfast.open_store(out), lobfast.open_store(flat)
    for venue, other in (("binance", one), ("spot", lobfast.open_store(built))):
        for sym in SYMBOLS:
            for table in ("book", "features", "trades"):
                got = both.load(table, sym, venue=venue)
                want = other.load(table, sym)
                _assert_same({"ts": got.ts, **got.columns}, {"ts": want.ts, **want.columns}, f"{venue} {sym} {table}")


def test_tardis_trades_only_give_empty_book_tables(tardis, tmp_path):
    src = _tardis_src(tardis, tmp_path / "csv", "trades")
    summary = store.process(src, tmp_path / "s", workers=1, **{**PARAMS, "features": "mid,signed_volume"})
    assert summary.ok and summary.written == 6, str(summary)
    s = lobfast.open_store(tmp_path / "s")
    trades = lobfast.read_tardis(_of(tardis[1]["trades"], "AAAUSDT"))
    got = s.load("trades", "AAAUSDT")
    np.testing.assert_array_equal(got.ts, trades.ts)
    np.testing.assert_array_equal(got["price"], trades.price)
    assert len(s.load("book", "AAAUSDT")) == 0 and len(s.load("features", "AAAUSDT")) == 0
    assert [f"bid_px_{k}" in s.dataset("book").schema.names for k in (1, 5)] == [True, True]
