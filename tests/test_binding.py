"""The binding's one rule from core error codes to exceptions, and its two array-input checks."""

from __future__ import annotations

import numpy as np
import pytest

from lobfast import LobError, _core

X = np.array([1.0, 2.0, 3.0])
TS = np.array([1, 2, 3], np.int64)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: _core.Book(levels=0), "levels must be between 1 and 65535, not 0"),
        (lambda: _core.label_ema(X, -1.0), r"alpha must be in \(0, 1\], not -1"),
        (lambda: _core.label_return(X, TS[::-1].copy(), None, 1, 0), "ts must be sorted ascending"),
        (lambda: _core.hawkes_loglik(X, 0.0, 5.0, -1.0, 0.5, 1.0), "mu"),
        (lambda: _core.hawkes_simulate(1.0, 0.5, 1.0, 5.0, 0.0, 1), "T0 < T1"),
        (
            lambda: _core.aggregate(
                TS, X[:, None], X[:, None], None, TS, X, np.array([1.0, -1, 1]), np.ones(3, np.int8), every=1
            ),
            "trades qty at row 1",
        ),
        (lambda: _core.rolling_sum(X, span=2, ts=np.array([1, np.iinfo(np.int64).min, 3])), "NaT"),
    ],
)
def test_every_argument_error_of_the_core_is_a_lob_error(call, message):
    """LOB_E_ARG is a LobError (a ValueError) in every binding, with path/line/offset."""
    with pytest.raises(LobError, match=message) as e:
        call()
    assert isinstance(e.value, ValueError)
    assert (e.value.path, e.value.line, e.value.offset) == (None, 0, 0)


def test_an_index_out_of_range_is_an_index_error_not_a_lob_error():
    out = np.zeros((1, 2, 1))
    with pytest.raises(IndexError, match="window 0 ends at row 7") as e:
        _core.window_gather(np.ones((5, 1)), [7], 2, out)
    assert not isinstance(e.value, LobError)


def test_a_lob_error_made_in_python_has_the_attributes_of_one_from_c():
    e = LobError("no data")
    assert (e.path, e.line, e.offset) == (None, 0, 0)


def test_strict_inputs_say_what_is_wrong():
    b = _core.Book(levels=1)
    raw = np.zeros(8 * 2 + 1, np.uint8)
    misaligned = raw[1:].view(np.int64)  # int64 at an odd address
    assert not misaligned.flags.aligned
    cols = (np.ones(2, np.int8), np.ones(2), np.ones(2), np.ones(2, np.int64), np.ones(2, np.uint8))
    with pytest.raises(
        TypeError, match=r"ts must be a 1-D C-contiguous aligned native int64 array \(got int64, 1-D, not aligned\)"
    ):
        b.feed(misaligned, *cols)
    x = np.ones((4, 1))
    out = np.zeros((1, 2, 1), np.float32)
    out.flags.writeable = False
    with pytest.raises(TypeError, match=r"out must be a writable 3-D .* \(got float32, 3-D, read-only\)$"):
        _core.window_gather(x, [3], 2, out)
    with pytest.raises(
        TypeError,
        match="x must be a NumPy array, not list: a 2-D C-contiguous aligned native float32 or float64 ndarray",
    ):
        _core.window_gather(x.tolist(), [3], 2, np.zeros((1, 2, 1)))
