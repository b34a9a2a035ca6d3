"""Every cell TimeIndex reads from a CSV file is checked: text without control bytes and of
bounded length (checked before the dictionary lookup), times within 1970..2262, numbers that
neither underflow to 0 nor overflow to infinity.  A bad cell is a LobError naming the file,
line and column, with the cell shown escaped (never cut at a NUL byte)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from lobfast import LobError, TimeIndex


def read(tmp_path, text: bytes, **kw):
    p = tmp_path / "c.csv"
    p.write_bytes(text)
    return TimeIndex(str(p), ts_col="time", unit="s", index_dir=str(tmp_path), **kw).read()


@pytest.mark.parametrize("tail", [64, 100_000])
def test_text_cell_with_a_nul_after_the_same_prefix(tmp_path, tail):
    """'A', then 'A\\0BBB...': the dictionary compared up to the NUL, read past its entry and
    returned the code of 'A' (64 bytes) or crashed (megabytes)."""
    text = b"time,sym\n1,A\n2,A\x00" + b"B" * tail + b"\n"
    why = "control bytes" if tail < 1024 else "at most 1024 bytes"
    with pytest.raises(LobError, match=r"c\.csv, line 3 \(byte 13\): column 2 \(sym\): expected text .*" + why) as e:
        read(tmp_path, text)
    assert "'A\\x00BBBB" in str(e.value) and e.value.line == 3


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command")
def test_32mb_text_cell_in_a_small_zst_file(tmp_path):
    """The case that crashed: 'A', then 'A\\0' and 32 MB of 'B' (a 1.4 KB .csv.zst)."""
    p = tmp_path / "c.csv"
    p.write_bytes(b"time,sym\n1,A\n2,A\x00" + b"B" * (32 << 20) + b"\n")
    subprocess.run(["zstd", "-q", "--rm", str(p)], check=True)
    ti = TimeIndex(str(p) + ".zst", ts_col="time", unit="s", index_dir=str(tmp_path), dtypes={"sym": "text"})
    with pytest.raises(LobError, match=r"c\.csv\.zst, line 3 \(byte 13\): column 2 \(sym\): expected text of at most"):
        ti.read()


@pytest.mark.parametrize("cell", [b"\x00", b"B\tC", b"B\x01", b"B\x7f", b"\x1bB"])
def test_control_bytes_in_text_cells(tmp_path, cell):
    with pytest.raises(LobError, match=r"line 3 .*column 2 \(sym\): expected text without control bytes"):
        read(tmp_path, b"time,sym\n1,A\n2," + cell + b"\n")


def test_long_text_cell(tmp_path):
    ok = read(tmp_path, b"time,sym\n1,A\n2," + b"B" * 1024 + b"\n")
    assert ok["sym"].tolist() == [0, 1]
    with pytest.raises(LobError, match=r"line 3 .*expected text of at most 1024 bytes, found 'BBBB"):
        read(tmp_path, b"time,sym\n1,A\n2," + b"B" * 1025 + b"\n")


@pytest.mark.parametrize(
    "cell, match",
    [
        (b"1e-400", r"expected a decimal number within float64 range"),  # would be 0
        (b"1e400", r"expected a decimal number within float64 range"),  # would be inf
        (b"1\x00", r"expected a decimal number, found '1\\x00'"),
    ],
)
def test_numbers(tmp_path, cell, match):
    with pytest.raises(LobError, match=r"line 3 .*column 2 \(px\): " + match):
        read(tmp_path, b"time,px\n1,1.5\n2," + cell + b"\n", dtypes={"px": "float64"})


@pytest.mark.parametrize("cell", [b"9223372036854775807", b"9214646401"])
def test_times_past_2262(tmp_path, cell):
    """A time column (in the index's unit, s here) is refused past 2262, not kept."""
    p = tmp_path / "t.csv"
    p.write_bytes(b"time,exchange_timestamp\n1,1700000000\n2," + cell + b"\n")
    ti = TimeIndex(str(p), ts_col="time", unit="s", index_dir=str(tmp_path), dtypes={"exchange_timestamp": "time"})
    with pytest.raises(
        LobError, match=r"line 3 .*column 2 \(exchange_timestamp\): expected a time in s between 1970 and 2262"
    ):
        ti.read()
