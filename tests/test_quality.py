"""quality_report on the real recordings."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SPOT_BTC_0808, SPOT_BTC_0809, USDM_BTC_0808

import lobfast


@pytest.fixture(scope="module")
def usdm_report():
    return lobfast.quality_report(lobfast.read_binance(USDM_BTC_0808))


def test_counts_and_rates(usdm_report):
    r = usdm_report
    c = r.counts
    assert (c["gaps"], c["resets"], c["crossed_books"], c["repairs"], c["bad_lines"]) == (0, 1, 0, 0, 0)
    assert c["depth_messages"] == 6551 and c["trade_messages"] == 21313 and c["book_ticker_messages"] == 66089
    assert c["level_updates"] == 445262 - 2000 - 0  # diff rows: all rows but the 2 x 1000 snapshot levels
    assert 340 < r.span_s < 350
    assert r.rates["level_updates_per_s"] == pytest.approx(c["level_updates"] / r.span_s)
    assert c["busiest_second_updates"] > r.rates["level_updates_per_s"]


def test_latency_reflects_the_recorders_clock(usdm_report):
    lat = usdm_report.latency_ms
    # the recorder's clock runs ~1.27 s behind Binance's in these files
    for name in ("depth", "trades", "quotes"):
        assert -1300 < lat[name]["p50"] < -1200, name
        assert lat[name]["min"] <= lat[name]["p50"] <= lat[name]["p99"] <= lat[name]["max"]


def test_gaps_show_up():
    md = lobfast.read_binance(SPOT_BTC_0809)  # no snapshot: nothing synced, nothing invented
    r = lobfast.quality_report(md)
    assert r.counts["resets"] == 0 and r.counts["dropped_before_sync"] == 3044 and r.counts["level_updates"] == 0
    assert "latency depth" not in str(r)


def test_text_table_and_plot(usdm_report, tmp_path):
    text = str(usdm_report)
    assert "quality of BTCUSDT (usdm)" in text and "gaps 0" in text and "p99" in text
    df = usdm_report.to_pandas()
    assert set(df["section"]) >= {"counts", "rates", "latency_ms.depth"}
    assert df.set_index("metric").loc["gaps", "value"] == 0
    import matplotlib

    matplotlib.use("Agg")
    axes = usdm_report.plot()
    axes[0].figure.savefig(tmp_path / "q.png")
    assert (tmp_path / "q.png").stat().st_size > 1000


def test_two_files_as_one_stream():
    r = lobfast.quality_report(lobfast.read_binance([SPOT_BTC_0808, SPOT_BTC_0809]))
    assert r.counts["gaps"] == 0 and np.isclose(r.span_s, 650.447201, atol=1e-3)
