"""lobfast.Flags: names for a flags column (str() of an IntFlag is its number on Python 3.11+)."""

from __future__ import annotations

import numpy as np
import pytest

import lobfast
from lobfast import Flags


def test_names_of_a_column():
    col = np.array([0, 1, 3, 9, 4, 15], dtype=np.uint8)
    out = Flags.names(col)
    assert out.dtype == object and out.shape == col.shape
    assert out.tolist() == [
        "",
        "SNAPSHOT",
        "SNAPSHOT|RESET",
        "SNAPSHOT|END_OF_MESSAGE",
        "GAP",
        "SNAPSHOT|RESET|GAP|END_OF_MESSAGE",
    ]
    assert Flags.names(np.empty((0,), np.uint8)).shape == (0,)
    assert Flags.names(np.array([[8]])).tolist() == [["END_OF_MESSAGE"]]


def test_names_of_real_depth_rows_in_pandas():
    pytest.importorskip("pandas")
    from lobfast import datasets

    df = lobfast.read_binance(datasets.path("spot_btcusdt_20240808")).depth.to_pandas()
    names = Flags.names(df["flags"])
    assert names[0] == "SNAPSHOT|RESET"
    for value, name in zip(df["flags"].to_numpy()[:5000], names[:5000]):
        assert name == "|".join(m.name for m in Flags if value & m)
    assert set(names) >= {"SNAPSHOT", "SNAPSHOT|END_OF_MESSAGE", "END_OF_MESSAGE", ""}


@pytest.mark.parametrize("bad", [np.array([16], np.uint8), np.array([-1]), np.array([255], np.uint8)])
def test_unknown_bits_are_refused(bad):
    with pytest.raises(ValueError, match="not lobfast.Flags"):
        Flags.names(bad)


def test_non_integers_are_refused():
    with pytest.raises(TypeError, match="integers"):
        Flags.names(np.array([1.0]))
