"""The ``lobfast`` command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import SPOT_ETH_0808

from lobfast import cli, collector


def test_demo_runs_the_whole_pipeline(capsys, tmp_path):
    """`lobfast demo --quick`: every stage on the bundled sample plus a simulated stretch."""
    assert cli.main(["demo", "--quick", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "BTCUSDT (spot), 2 file(s), 99,574 lines" in out
    assert "2024-08-08 23:54:14.087 -> 2024-08-09 00:05:04.535 UTC" in out
    assert "depth 6,495  trade 19,904" in out and "gaps 0" in out
    assert "[9/9] figures and report" in out and "lobfast demo finished" in out
    assert "real recording  IC vs raw return" in out and "backtest at the validation's threshold" in out
    report = (tmp_path / "out" / "report.md").read_text()
    for section in ("## Real data", "## Simulated market", "## Training", "## Evaluation", "## Backtest"):
        assert section in report
    assert "Baselines that need no model: always long" in report and "| real recording |" in report
    for png in (
        "book_heatmap",
        "mid_microprice",
        "ofi_vs_returns",
        "training_curves",
        "backtest_pnl",
        "stylized_facts",
    ):
        f = tmp_path / "out" / f"{png}.png"
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"({png}.png)" in report


def test_demo_on_user_data_and_bad_arguments(capsys, tmp_path):
    assert cli.main(["demo", "--data", str(SPOT_ETH_0808), "--quick", "--out", str(tmp_path / "eth")]) == 0
    out = capsys.readouterr().out
    assert "ETHUSDT (spot)" in out and "lobfast demo: your recordings" in out
    assert "- ETHUSDT (spot), 1 file(s)" in (tmp_path / "eth" / "report.md").read_text()
    assert cli.main(["demo", "--data", str(tmp_path / "nothing*.gz"), "--out", str(tmp_path)]) == 1
    assert "no files match" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "many"])


def test_info_and_usage(capsys):
    assert cli.main(["info", str(SPOT_ETH_0808)]) == 0
    assert "ETHUSDT (spot)" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert "usage: lobfast" in capsys.readouterr().err


def test_console_script_entry_point():
    r = subprocess.run(
        [sys.executable, "-m", "lobfast.cli", "info", str(SPOT_ETH_0808)], capture_output=True, text=True
    )
    assert r.returncode == 0 and "ETHUSDT" in r.stdout


def test_collect_without_the_recorder_says_how_to_get_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(collector, "BINARY", tmp_path / "lobfast-collect")
    assert cli.main(["collect", "--venue", "spot", "--symbols", "btcusdt", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lobfast collect: error: ") and err.count("\n") == 1
    assert "built without its recorder" in err and "libwebsockets-dev" in err and "LOBFAST_COLLECTOR=1" in err


def test_demo_baselines_flag_near_constant_predictions():
    """The report's baseline table: always long traded on the same rows and fees, always flat
    at 0, and a model whose predictions do not move flagged."""
    from types import SimpleNamespace

    from lobfast import backtest, demo

    ts = np.arange(200, dtype=np.int64) * 100_000_000
    bid = 100 + np.cumsum(np.random.default_rng(0).normal(size=200)) * 0.01
    book = (ts, bid, bid + 0.01)
    ds = SimpleNamespace(ends=np.arange(10, 180), targets=np.random.default_rng(1).normal(size=170))
    moving = {"a": np.random.default_rng(2).normal(size=170), "b": np.full(170, 0.25)}
    lines = demo._baselines({"a": (ds, book, None), "b": (ds, book, None)}, moving, 4.0, 5)
    row = {line.split("|")[1].strip(): line for line in lines if line.startswith("| a ") or line.startswith("| b ")}
    signal = np.full(200, np.nan)
    signal[ds.ends] = 1.0
    long = backtest.hold_to_horizon(signal, book, 5, fee_bps_taker=4.0)
    assert f"| {long.trades} | {long.net_pnl:+.6f} | 0 |" in row["a"] and "| no |" in row["a"]
    assert "**yes**" in row["b"] and any("near-constant on some data" in line for line in lines)
