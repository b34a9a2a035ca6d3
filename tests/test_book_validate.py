"""Every bad value is found wherever it sits in a long batch: the book checks batches a chunk
at a time (two prices or sixteen sides per compare), then row by row where a chunk fails."""

from __future__ import annotations

import numpy as np
import pytest

from lobfast import BookBuilder, DepthEvents, Flags, LobError

SNAP, RESET, EOM = (int(f) for f in (Flags.SNAPSHOT, Flags.RESET, Flags.END_OF_MESSAGE))
N = 75  # rows: past a few 16-side and 2-price steps, with tails of both
T0 = 1_700_000_000_000_000_000


def batch() -> dict[str, np.ndarray]:
    n = np.arange(N)
    flags = np.full(N, EOM, np.uint8)
    flags[0] = RESET | SNAP | EOM
    return {
        "ts": T0 + n,
        "local_ts": T0 + n,
        "side": np.where(n % 2 == 0, 1, -1).astype(np.int8),
        "price": np.where(n % 2 == 0, 100.0 - n * 0.1, 200.0 + n * 0.1).round(1),
        "qty": np.ones(N),
        "update_id": n.astype(np.int64),
        "flags": flags,
    }


BAD = [
    ("price", np.nan, "price must be positive and finite, not nan"),
    ("price", np.inf, "price must be positive and finite, not inf"),
    ("price", 0.0, "price must be positive and finite, not 0"),
    ("price", -1.5, "price must be positive and finite, not -1.5"),
    ("qty", np.nan, "qty must be >= 0 and finite, not nan"),
    ("qty", -np.inf, "qty must be >= 0 and finite, not -inf"),
    ("qty", -2.0, "qty must be >= 0 and finite, not -2"),
    ("side", 2, r"side must be \+1 \(bid\) or -1 \(ask\), not 2"),
    ("side", 0, r"side must be .* not 0 \(0 only on GAP or RESET marker rows\)"),
    ("side", -128, r"side must be .* not -128"),
    ("ts", T0 - 5, "is before the previous row's"),
]


@pytest.mark.parametrize("row", [1, 2, 15, 16, 17, 47, 64, 73, 74])
@pytest.mark.parametrize("column, value, message", BAD)
def test_a_bad_value_anywhere_in_a_batch_is_refused_naming_its_row(row, column, value, message):
    cols = batch()
    cols[column][row] = value
    builder = BookBuilder(2)
    with pytest.raises(LobError, match=f"row {row}: .*{message}"):
        builder.feed(DepthEvents(**cols))
    assert builder.stats["rows"] == 0  # nothing applied


def test_a_good_batch_with_marker_rows_is_accepted():
    cols = batch()
    cols["side"][30] = 0
    cols["price"][30] = cols["qty"][30] = np.nan
    cols["flags"][30] = int(Flags.GAP) | EOM
    got = BookBuilder(2).feed(DepthEvents(**cols))
    assert len(got) == N
