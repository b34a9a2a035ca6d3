"""The collector's view of a Binance message (core/peek.c) against a json.loads reference.

The collector routes, sequences and de-duplicates with lob_peek_binance, so every real line and random
messages (any field order, whitespace, huge ids, truncation) must classify exactly as the reference does.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lobfast
from lobfast import LobError
from lobfast._core import peek_binance

DATA = Path(__file__).parent / "data" / "binance"
INT64 = (-(2**63), 2**63 - 1)


def _int(d, k):
    v = d.get(k)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def reference(text: str) -> dict:
    """Classify `text` the way the collector must (plain Python over json.loads)."""
    top = json.loads(text)
    if not isinstance(top, dict):
        raise ValueError("not an object")
    stream = top["stream"] if isinstance(top.get("stream"), str) else ""
    f = dict(top)
    f.pop("code", None), f.pop("msg", None), f.pop("result", None), f.pop("id", None)
    if isinstance(top.get("data"), dict):
        data = dict(top["data"])
        for k in ("stream", "data", "code", "msg", "result", "id"):
            data.pop(k, None)
        f.update(data)
    out = {"stream": stream.encode()}
    e = f["e"] if isinstance(f.get("e"), str) else None
    sym = f["s"] if isinstance(f.get("s"), str) and f["s"] else None  # an empty "s" names nothing
    if sym is None and stream:
        prefix = stream.split("@", 1)[0]
        sym = "" if not prefix or stream.startswith("!") else prefix
    out["symbol"] = (sym or "").encode()
    for k in ("E", "U", "u", "pu"):
        if _int(f, k) is not None:
            out[k] = f[k]
    levels = any(isinstance(f.get(k), list) for k in ("b", "a", "bids", "asks"))
    bbo = any(isinstance(f.get(k), str) for k in ("b", "a"))
    luid = _int(f, "lastUpdateId")
    partial = re.search(r"@depth\d", stream) is not None
    if "lobfast" in top:
        out["kind"] = "collector"
    elif e == "depthUpdate":
        out["kind"] = "partial" if partial else "diff"
        if partial and "u" in out:
            out["id"] = out["u"]
    elif e in ("trade", "aggTrade"):
        out["kind"] = "trade" if e == "trade" else "agg"
        idv = _int(f, "t" if e == "trade" else "a")
        if idv is not None:
            out["id"] = idv
    elif e == "bookTicker" or (e is None and "u" in out and bbo):
        out["kind"] = "quote"
        if "u" in out:
            out["id"] = out["u"]
    elif e == "serverShutdown":
        out["kind"] = "shutdown"
    elif e is None and luid is not None and levels:
        out["kind"] = "partial" if stream else "snapshot"
        out["id"] = luid
    elif e is None and _int(top, "code") is not None and isinstance(top.get("msg"), str):
        out["kind"] = "error"
        out["error"] = (top["code"], top["msg"].encode())
    elif e is None and not stream and ("result" in top or "id" in top):
        out["kind"] = "reply"
    else:
        out["kind"] = "other"
    return out


def test_every_real_line_classifies_as_the_reference():
    kinds = {}
    for path in sorted(DATA.glob("*.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                msg = line.rstrip("\n").split(" ", 1)[1]
                got = peek_binance(msg.encode())
                assert got == reference(msg), msg[:200]
                kinds[got["kind"]] = kinds.get(got["kind"], 0) + 1
    assert kinds["diff"] > 10000 and kinds["trade"] > 40000 and kinds["quote"] > 100000 and kinds["snapshot"] == 3


EXAMPLES = [
    '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":26129,"p":"0.01","q":"1",'
    '"f":1,"l":2,"T":1,"m":true,"M":true}}',
    '{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["1","2"]],"asks":[]}}',
    '{"stream":"btcusdt@depth5","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":9,"pu":0,"b":[],"a":[]}}',
    '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}',
    '{"e":"serverShutdown","E":1770123456789}',
    '{"result":null,"id":1}',
    '{"code":-1121,"msg":"Invalid symbol."}',
    '{"code":2,"msg":"Invalid request: unknown variant"}',
    '{"lastUpdateId":1027024,"E":1589436922972,"T":1589436922959,"bids":[["4.0","431.0"]],"asks":[]}',
    '{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}',
    '{"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1"}}',
    '  {"stream" : "ethusdt@trade" ,\t"data":{ "t" : 9223372036854775807 , "e":"trade"}}  ',
    "{}",
    '{"lobfast":{"event":"connected","conn":1}}',
]


@pytest.mark.parametrize("msg", EXAMPLES)
def test_documented_shapes(msg):
    assert peek_binance(msg.encode()) == reference(msg)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "[]",
        "null",
        '{"stream":"x"',
        '{"a":1} {"b":2}',
        '{"a":1,}',
        '{"u":99999999999999999999}',
        '{"a":"\x01"}',
        '{"a":tru}',
        "{" * 100 + "}" * 100,
    ],
)
def test_malformed_is_an_error_naming_the_column(bad):
    with pytest.raises(LobError, match="column"):
        peek_binance(bad.encode())


def test_a_control_byte_is_shown_escaped():
    """The error quotes the text at the bad byte escaped, not cut at a NUL."""
    with pytest.raises(LobError, match=r"column 7: expected a printable character in the string, found '\\x00b\"}'"):
        peek_binance(b'{"a":"\x00b"}')


ids = st.integers(*INT64)
# strings come back raw (escapes checked, not decoded): draw those JSON writes as they are
strings = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'), max_size=12)
levels = st.lists(
    st.tuples(
        st.from_regex(r"[0-9]{1,6}\.[0-9]{1,8}", fullmatch=True),
        st.from_regex(r"[0-9]{1,4}\.[0-9]{1,8}", fullmatch=True),
    ).map(list),
    max_size=3,
)
events = st.sampled_from(["depthUpdate", "trade", "aggTrade", "bookTicker", "serverShutdown", "kline", None])
streams = st.sampled_from(
    [
        "btcusdt@depth@100ms",
        "btcusdt@depth10@100ms",
        "ethusdt@trade",
        "x@aggTrade",
        "!bookTicker",
        "@weird",
        "btcusdt@bookTicker",
        None,
    ]
)


@st.composite
def messages(draw):
    data = {}
    e = draw(events)
    if e is not None:
        data["e"] = e
    for key in draw(
        st.lists(
            st.sampled_from(
                ["E", "T", "U", "u", "pu", "t", "a", "lastUpdateId", "s", "b", "bids", "asks", "p", "q", "m", "x"]
            ),
            unique=True,
            max_size=9,
        )
    ):
        if key in ("b", "a") and draw(st.booleans()):
            data[key] = draw(strings)
        elif key in ("b", "bids", "asks"):
            data[key] = draw(levels)
        elif key in ("s", "p", "q"):
            data[key] = draw(strings)
        elif key == "m":
            data[key] = draw(st.booleans())
        elif key == "x":
            data[key] = draw(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), levels))
        else:
            data[key] = draw(ids)
    items = list(data.items())
    items = draw(st.permutations(items))
    stream = draw(streams)
    if stream is None:
        top = dict(items)
        if draw(st.booleans()):
            top.update(draw(st.sampled_from([{"code": -1121, "msg": "Invalid symbol."}, {"result": None, "id": 3}])))
        body = top
    else:
        body = {"stream": stream, "data": dict(items)}
    sep = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\t", " : ")]))
    return json.dumps(body, separators=sep, ensure_ascii=draw(st.booleans()))


@settings(max_examples=400, deadline=None)
@given(messages())
def test_random_messages_classify_as_the_reference(msg):
    assert peek_binance(msg.encode()) == reference(msg)


@settings(max_examples=300, deadline=None)
@given(messages(), st.data())
def test_a_cut_message_is_never_taken_for_a_whole_one(msg, data):
    cut = data.draw(st.integers(0, len(msg.encode()) - 1))
    raw = msg.encode()[:cut]
    if raw.strip() and raw.rstrip() == msg.encode().rstrip():
        return  # only trailing blanks were cut
    with pytest.raises(LobError):
        peek_binance(raw)


# One table of message kinds, seen by both users of the one classifier: the collector's
# peek_binance, and read_binance given the message as a one-line recording (the counter it
# must count the message under).  tests/c/test_binance.c checks the same kinds in C.
COUNTERS = (
    "depth_messages",
    "trade_messages",
    "agg_trade_messages",
    "book_ticker_messages",
    "snapshots",
    "partial_depth_messages",
    "collector_events",
    "unknown_messages",
)
KINDS = [
    (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT","U":1,"u":2,'
        '"b":[["1","1"]],"a":[]}}',
        "diff",
        "depth_messages",
    ),
    (
        '{"e":"depthUpdate","E":1700000000000,"T":1700000000000,"s":"BTCUSDT","U":5,"u":9,"pu":4,"b":[],'
        '"a":[["2","0"]]}',
        "diff",
        "depth_messages",
    ),
    (
        '{"stream":"btcusdt@depth5","data":{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT","U":1,"u":9,'
        '"pu":0,"b":[],"a":[]}}',
        "partial",
        "partial_depth_messages",
    ),
    (
        '{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":7,"bids":[],"asks":[]}}',
        "partial",
        "partial_depth_messages",
    ),
    # a snapshot's shape in a stream frame is never a REST snapshot, whatever the stream
    (
        '{"stream":"btcusdt@depth@100ms","data":{"lastUpdateId":7,"bids":[],"asks":[]}}',
        "partial",
        "partial_depth_messages",
    ),
    (
        '{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000000,"s":"BTCUSDT","t":12,"p":"1.5","q":"2",'
        '"T":1700000000000,"m":true,"M":true}}',
        "trade",
        "trade_messages",
    ),
    (
        '{"e":"aggTrade","E":1700000000000,"s":"BTCUSDT","a":26129,"p":"1","q":"1","f":1,"l":2,"T":1700000000000,'
        '"m":false}',
        "agg",
        "agg_trade_messages",
    ),
    ('{"u":400900217,"s":"BNBUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40"}', "quote", "book_ticker_messages"),
    (
        '{"e":"bookTicker","u":4,"E":1700000000000,"T":1700000000000,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}',
        "quote",
        "book_ticker_messages",
    ),
    # both a bookTicker's and a snapshot's fields: the quote wins, in both users
    ('{"u":4,"b":"1","B":"1","a":"2","A":"1","lastUpdateId":3,"bids":[],"asks":[]}', "quote", "book_ticker_messages"),
    ('{"lastUpdateId":1027024,"bids":[["4.0","431.0"]],"asks":[]}', "snapshot", "snapshots"),
    (
        '{"lastUpdateId":1027024,"E":1589436922972,"T":1589436922959,"bids":[],"asks":[["4.0","1"]]}',
        "snapshot",
        "snapshots",
    ),
    ('{"lobfast":{"event":"connected","conn":1}}', "collector", "collector_events"),
    ('{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}', "shutdown", "unknown_messages"),
    ('{"result":null,"id":1}', "reply", "unknown_messages"),
    ('{"code":-1121,"msg":"Invalid symbol."}', "error", "unknown_messages"),
    ('{"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1,"p":"1"}}', "other", "unknown_messages"),
    # levels on a top-N stream without lastUpdateId or an event: nothing known
    ('{"stream":"btcusdt@depth5","data":{"bids":[],"asks":[]}}', "other", "unknown_messages"),
    ("{}", "other", "unknown_messages"),
]


@pytest.mark.parametrize("msg, kind, counter", KINDS)
def test_one_table_of_kinds_for_the_collector_and_the_reader(tmp_path, msg, kind, counter):
    assert peek_binance(msg.encode())["kind"] == kind == reference(msg)["kind"]
    path = tmp_path / "one.txt"
    path.write_text(f"1700000000000000000 {msg}\n")
    stats = lobfast.read_binance(path).stats
    assert {c: stats[c] for c in COUNTERS} == {c: int(c == counter) for c in COUNTERS}


@pytest.mark.parametrize(
    "msg, kind",
    [
        ('{"e":7,"E":1}', "other"),
        ('{"e":"trade","t":"12","p":"1","q":"1","m":true}', "trade"),
        ('{"e":"depthUpdate","U":1,"u":null,"b":[],"a":[]}', "diff"),
        ('{"e":"aggTrade","a":true,"p":"1","q":"1","m":true}', "agg"),
    ],
)
def test_a_field_of_the_wrong_type_is_skipped_by_the_collector_refused_by_the_reader(tmp_path, msg, kind):
    assert peek_binance(msg.encode())["kind"] == kind
    path = tmp_path / "one.txt"
    path.write_text(f"1 {msg}\n")
    with pytest.raises(LobError, match="expected an? (string|integer)"):
        lobfast.read_binance(path)


@pytest.mark.parametrize("name", ["spot_ethusdt_20240808.gz", "usdm_btcusdt_20240808.gz"])
def test_the_reader_counts_real_lines_as_the_collector_classifies_them(name):
    counts = dict.fromkeys(["diff", "trade", "agg", "quote", "snapshot", "partial", "collector", "unknown"], 0)
    with gzip.open(DATA / name, "rt") as f:
        for line in f:
            kind = peek_binance(line.rstrip("\n").split(" ", 1)[1].encode())["kind"]
            counts[kind if kind in counts else "unknown"] += 1
    stats = lobfast.read_binance(DATA / name).stats
    assert [stats[c] for c in COUNTERS] == list(counts.values())
