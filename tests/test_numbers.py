"""The C decimal parser against Python's exact conversion, on random and edge inputs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobfast import LobError, _core, _reference


@given(
    st.integers(min_value=0, max_value=10**25),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=0, max_value=12),
)
@settings(max_examples=3000, deadline=None)
def test_fixed_point_strings(mantissa, scale, trailing_zeros):
    s = str(mantissa).rjust(scale + 1, "0")
    text = (s[:-scale] + "." + s[-scale:] if scale else s) + "0" * (trailing_zeros if scale else 0)
    assert _core.parse_decimal(text.encode()) == _reference.parse_decimal(text), text


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e30"), max_value=Decimal("1e30")))
@settings(max_examples=3000, deadline=None)
def test_random_decimals(d):
    text = str(d)  # may use exponents, e.g. 1E-7
    significant = "".join(map(str, Decimal(text).as_tuple().digits)).strip("0")
    if len(significant) > 40:
        with pytest.raises(LobError, match="out of range"):
            _core.parse_decimal(text.encode())
    else:
        assert _core.parse_decimal(text.encode()) == float(Decimal(text)), text


@given(st.floats(allow_nan=False, allow_infinity=False))
@settings(max_examples=3000, deadline=None)
def test_round_trips_every_double(x):
    """repr() gives the shortest string that reads back to the same double."""
    assert _core.parse_decimal(repr(x).encode()) == x


@pytest.mark.parametrize(
    "text, value",
    [
        ("0", 0.0),
        ("0.00000000", 0.0),
        ("61737.63000000", 61737.63),
        ("0.00001234", 1.234e-05),
        ("1e-05", 1e-05),
        ("2.5E+3", 2500.0),
        ("-3.25", -3.25),
        ("9007199254740993", 9007199254740992.0),  # 2^53 + 1 rounds to even
        ("123456789012345678901234567890", 1.2345678901234568e29),  # slow path
        ("0.1000000000000000055511151231257827", 0.1),
    ],
)
def test_known_values(text, value):
    assert _core.parse_decimal(text.encode()) == value


@pytest.mark.parametrize("text", ["", "-", ".", "e5", "1e", "1x", "nan", "inf", " 1", "1.2.3", "--1"])
def test_not_a_number(text):
    with pytest.raises(LobError, match="not a decimal"):
        _core.parse_decimal(text.encode())


def test_zeros_do_not_count_towards_the_digit_limit():
    assert _core.parse_decimal(b"0.1" + b"0" * 45) == 0.1
    assert _core.parse_decimal(b"0." + b"0" * 45 + b"1") == 1e-46
    assert _core.parse_decimal(b"1" + b"0" * 45) == 1e45


@pytest.mark.parametrize("text", ["1e400", "-1e400", "1" * 41, "1" + "0" * 40 + "1"])
def test_out_of_range(text):
    with pytest.raises(LobError, match="out of range"):
        _core.parse_decimal(text.encode())
