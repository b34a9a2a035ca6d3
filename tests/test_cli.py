"""The ``lobfast`` command."""

from __future__ import annotations

import subprocess
import sys

from conftest import SPOT_ETH_0808

from lobfast import cli


def test_demo_summarises_the_bundled_samples(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "BTCUSDT (spot), 2 file(s), 99,574 lines" in out
    assert "2024-08-08 23:54:14.087 -> 2024-08-09 00:05:04.535 UTC" in out
    assert "depth 6,495  trade 19,904" in out and "gaps 0" in out
    assert "BTCUSDT (usdm), 1 file(s), 93,954 lines" in out and "trade 21,313" in out


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
