"""Seed corpus for fuzz_csv: small files of each CSV reader, good and with the cells that
once got through (int64 extremes, times past 2262, NUL and control bytes, values that round
to 0 or infinity, text values sharing a prefix).

    python3 tests/fuzz/make_csv_seeds.py OUT_DIR

Byte 0 of a seed picks the reader (0 columns, 1 Tardis, 2 data.binance.vision); a columns
seed has a second byte for the column kinds and the time unit (see fuzz_csv.c).
"""

from __future__ import annotations

import sys
from pathlib import Path

MAX = b"9223372036854775807"
MIN = b"-9223372036854775808"
PAST_2262 = b"9214646400000001"  # us
UNITS = {"auto": 0, "ns": 1, "us": 2, "s": 3}
KINDS = {"int64": 0, "float64": 1, "text": 2, "side": 3, "bool": 3}


def columns_seed(unit: str, kinds: list[str], text: bytes) -> bytes:
    """Bytes 0 and 1 of a columns seed (see fuzz_csv.c), then the file."""
    opt = UNITS[unit] | (4 if "bool" in kinds else 0)
    how = len(kinds) | sum(KINDS[k] << (2 * (i + 1)) for i, k in enumerate(kinds))
    return bytes([3 * opt, how]) + text


COLUMNS = [
    columns_seed("s", ["text", "float64", "side"], b"1,A,1.5,buy\n2,A\x00BBBB,2,sell\n3,B,nan,\n"),
    columns_seed(
        "auto", ["text", "float64", "side"], b"1700000000000,BTCUSDT,0.1,bid\n1700000000001,btcusdt,1e-400,ask\n"
    ),
    columns_seed(
        "s", ["int64", "float64", "side"], b"1700000000," + MAX + b",1e400,unknown\n1700000001," + MIN + b",-0,x\n"
    ),
    columns_seed(
        "s", ["bool", "int64", "text"], b"1.5,true,1,A\n" + MAX + b",false,0,A\tB\r\n\n9214646401,TRUE,2,\x7f\n"
    ),
    columns_seed("ns", ["text"], b"1,A\n1,A" + b"B" * 1100 + b"\n1,A\x01\n"),
    columns_seed("us", ["int64", "int64", "int64"], b"0,1,2,3\n" + MAX + b"," + MIN + b",0,1\n"),
]
TARDIS = [
    b"exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
    b"binance,BTCUSDT,1700000000000000,1700000000000100,true,bid,100.5,1\n"
    b"binance,BTCUSDT,1700000000000000,1700000000000100,true,ask,101,0\n"
    b"binance,BTCUSDT,,1700000000000200,false,bid,100.5,0\n"
    b"binance,BTCUSDT,1," + MAX + b",false,bid,1e-400,1\n"
    b"binance,BTC\x00USDT,1," + PAST_2262 + b",false,ask,1e400,-1\n",
    b"exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
    b"binance,BTCUSDT,1700000000000000,1700000000000100,123,buy,100,0.5\n"
    b"binance,BTCUSDT,1700000000000000,1700000000000100,a\x00b,sell,0,0\n"
    b"bin\x00ance,BTCUSDT," + MIN + b",1700000000000100,,unknown,-1,1\n",
    b"exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"
    b"binance-futures,ETHUSDT,1700000000000000,1700000000000100,1,101,100,2\n"
    b"binance-futures,ETHUSDT,1700000000000000,1700000000000100,,,,\n"
    b"binance-futures,ETHUSDT,1700000000000000,1700000000000100,-1,0,100,2\n",
    b"exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,bids[0].amount\n"
    b"binance,BTCUSDT,1700000000000000,1700000000000100,101,1,100,2\n"
    b"binance,BTCUSDT,1700000000000000,1700000000000100,,,0,\n",
]
VISION = [
    b"51175358,17.80180000,5.69000000,101.29224200,1735689600010866,True,True\n"
    b"51175359,0,5.69,101.2,1735689600010867,True,True\n"
    b"51175360,1e-400,5.69,101.2," + MAX + b",False,True\n",
    b"id,price,qty,quote_qty,time,is_buyer_maker\n1,2,3,4,1705276800000,true\n2,2,0,4,-1,false\n",
    b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
    b"1,2,3," + MIN + b"," + MAX + b",1705276800000,true\n",
    b"update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time\n"
    b"3831603310013,2474.30000000,6.00900000,2474.31000000,44.75700000,1705276800000,1705276800005\n"
    b"3831603310014,0,6,2474.31,-1,9214646400001,1705276800005\n",
    b"0,0.20000000,50.00000000,0,0,1735689600010866,False,True\n1,0.2,5\x00,0,0,1,False,True\n",
]


def main(out: str) -> None:
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    seeds = COLUMNS + [b"\x01" + t for t in TARDIS] + [b"\x02" + t for t in VISION]
    for i, s in enumerate(seeds):
        (d / f"seed_{i:02d}").write_bytes(s)


if __name__ == "__main__":
    main(sys.argv[1])
