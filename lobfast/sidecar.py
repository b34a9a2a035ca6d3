"""The ``.lfidx`` sidecar: a time index saved next to its data file, never trusted blindly.

Layout: ``LFIDX`` magic, a format version, a JSON header (what file it indexes: size, mtime
and a fingerprint of its first and last 64 KiB; the parameters it was built with; the
columns; the summary), the entries (:data:`ENTRY`: six little-endian int64 each), and a
CRC-32 of everything before it.  :func:`load` returns ``None`` with the reason when anything
does not match, so the caller rebuilds: a file that grew, was rewritten, or a sidecar that
was cut or damaged, or written by another version.  Nothing in a sidecar is trusted to be
well formed: it is opened without following a symbolic link and without waiting (a FIFO),
must be a regular file of bounded size, and every field read from it is checked (a
malformed one means "rebuild", never an error about the data file).

Raw Binance files may add book checkpoints after that (:func:`save` with ``checkpoints``):
``LFCKP`` magic, a JSON header (the parameters they were made with, which name the data
file's stamp and those of the files read before it), a table of :data:`CHECKPOINT` rows and
a CRC-32 of these, then one zlib-compressed block per checkpoint (its levels' prices then
sizes, float64, bids then asks, best first) whose size and CRC-32 the table holds; the file
then ends with the index part's length and ``LFCKPEND``.  :func:`load` reads only the index
part, :func:`load_checkpoints` the table, and :meth:`Checkpoints.levels` one block, checked
(checksum, size, a sorted book of positive prices and sizes) when it is read: damaged
checkpoints are rebuilt, never used.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import tempfile
import zlib
from typing import Any

import numpy as np

MAGIC = b"LFIDX\0"
VERSION = 2  # 2: book checkpoints may follow the index
# an index entry as the C core lays it out (lobfast.timeindex checks this at import): a line
# and where decompression restarts to reach it
ENTRY = np.dtype([(name, "<i8") for name in ("ts", "line", "row", "d_off", "c_off", "d_at")])
_HEAD = struct.Struct("<6sHI")  # magic, version, JSON length
_FINGERPRINT_BYTES = 1 << 16
_MAX_BYTES = 1 << 30  # the largest sidecar read: 22 million entries (entries * 48 + header)
# a book checkpoint (core/formats/binance.h) and where its levels are in the sidecar
CHECKPOINT = np.dtype(
    [(name, "<i8") for name in ("t", "last_u", "last_ts", "last_local", "market", "nbid", "nask", "off", "size", "crc")]
)
_CP_MAGIC = b"LFCKP\0"
_CP_HEAD = struct.Struct("<6sIQ")  # magic, JSON length, checkpoints
_TRAILER = struct.Struct("<Q8s")  # the index part's length, magic
_TRAILER_MAGIC = b"LFCKPEND"
_MAX_LEVELS = 1 << 24  # levels in one checkpoint's book


def source_stamp(path: str) -> dict[str, int]:
    """What identifies the indexed file's content: size, mtime and a CRC-32 of its ends."""
    st = os.stat(path)
    with open(path, "rb") as f:
        crc = zlib.crc32(f.read(_FINGERPRINT_BYTES))
        if st.st_size > _FINGERPRINT_BYTES:
            f.seek(max(st.st_size - _FINGERPRINT_BYTES, _FINGERPRINT_BYTES))
            crc = zlib.crc32(f.read(), crc)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "fingerprint": crc}


def save(path: str, header: dict[str, Any], entries: np.ndarray, checkpoints: Checkpoints | None = None) -> None:
    """Write atomically (temporary file + rename), so a reader never sees half a sidecar.
    Raises OSError when the directory cannot be written."""
    body = json.dumps(header, separators=(",", ":")).encode()
    data = _HEAD.pack(MAGIC, VERSION, len(body)) + body + np.ascontiguousarray(entries, ENTRY).tobytes()
    data += struct.pack("<I", zlib.crc32(data))
    if checkpoints is not None:
        data = data + checkpoints.pack(len(data)) + _TRAILER.pack(len(data), _TRAILER_MAGIC)
    fd, tmp = tempfile.mkstemp(prefix=".lfidx-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path: str, stamp: dict[str, int], params: dict[str, Any]) -> tuple[Any, str]:
    """``((header, entries), "")`` when the sidecar at ``path`` is intact and describes the
    file with ``stamp`` indexed with ``params``; else ``(None, why)``.  A missing sidecar gives
    ``why == ""``; a stale one starts with "stale", a damaged one with "corrupt"."""
    data, why = _read(path)
    if data is None:
        return None, why
    try:
        return _parse(data, stamp, params)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
        return None, f"corrupt: malformed ({type(e).__name__}: {e})"


def _read(path: str, part: str = "index") -> tuple[Any, str]:
    """The sidecar's index part (``part="index"``: its bytes), or the table of its checkpoint
    part (``"checkpoints"``: (the part's bytes up to the end of its table, its offset, the
    file's size); None when there is none), or (None, why): a missing sidecar gives
    why == ""."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None, ""
    except OSError as e:  # ELOOP: a symbolic link
        return None, f"corrupt: cannot open it without following links ({e.strerror or e})"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "corrupt: not a regular file"
        if st.st_size > _MAX_BYTES:
            return None, f"corrupt: {st.st_size} bytes is more than an index can be ({_MAX_BYTES})"
        size, index_size = st.st_size, st.st_size
        if size >= _TRAILER.size:
            n, magic = _TRAILER.unpack(os.pread(fd, _TRAILER.size, size - _TRAILER.size))
            if magic == _TRAILER_MAGIC and 0 < n <= size - _TRAILER.size:
                index_size = n
        if part == "index":
            data = os.pread(fd, index_size, 0)
            if len(data) != index_size or len(os.pread(fd, 1, size)):
                return None, "corrupt: its size changed while it was read"
            return data, ""
        if index_size == size:
            return None, ""
        part = size - _TRAILER.size - index_size
        data = os.pread(fd, min(_CP_HEAD.size, part), index_size)
        if len(data) == _CP_HEAD.size:  # the rest of the table (the levels are read one by one)
            _, n_json, n = _CP_HEAD.unpack(data)
            data += os.pread(fd, min(n_json + n * CHECKPOINT.itemsize + 4, part - len(data)), index_size + len(data))
        return (data, index_size, size), ""
    except OSError as e:
        return None, f"corrupt: cannot read it ({e})"
    finally:
        os.close(fd)


def _parse(data: bytes, stamp: dict[str, int], params: dict[str, Any]) -> tuple[Any, str]:
    if len(data) < _HEAD.size + 4 or data[:6] != MAGIC:
        return None, "corrupt: not a lobfast index"
    if struct.unpack("<I", data[-4:])[0] != zlib.crc32(data[:-4]):
        return None, "corrupt: checksum mismatch"
    _, version, n_json = _HEAD.unpack_from(data)
    if version != VERSION:
        return None, f"stale: index format version {version}, this lobfast writes {VERSION}"
    if _HEAD.size + n_json > len(data) - 4:
        return None, "corrupt: the header runs past the end"
    header = json.loads(data[_HEAD.size : _HEAD.size + n_json])
    raw = data[_HEAD.size + n_json : -4]
    entries = np.require(np.frombuffer(raw, ENTRY), requirements=["C", "A"])
    if not isinstance(header, dict):
        return None, "corrupt: the header is not a JSON object"
    if header.get("source") != stamp:
        return None, "stale: the data file changed since it was indexed"
    if header.get("params") != params:
        return None, "stale: built with other parameters"
    if not _layout_ok(header.get("layout"), params):
        return None, "corrupt: the layout does not fit the parameters"
    info = header.get("info")
    if not isinstance(info, dict):
        return None, "corrupt: no summary"
    why = check_entries(entries, info, stamp["size"])
    if why:
        return None, f"corrupt: {why}"
    return (header, entries), ""


_RAW_KEY = [" ", 0, 1, 0, "receive time"]
_KINDS = ("int64", "float64", "time", "bool", "side", "text")
_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1, "auto": 0}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _layout_ok(layout: Any, params: dict[str, Any]) -> bool:
    """The layout is what a build with ``params`` makes: raw files have the one raw key; a
    CSV key names one of the columns, in the unit asked for, with 0 or 1 header line."""
    try:
        sep, field, unit, skip, name = layout["key"]
        names, kinds = layout["names"], layout["kinds"]
        if layout["format"] != params.get("format", layout["format"]):
            return False
        if layout["format"] == "raw":
            return layout["key"] == _RAW_KEY and names == [] and kinds == []
        ts_col = params.get("ts_col")
        return (
            layout["format"] == "csv"
            and sep == ","
            and _is_int(field)
            and 0 <= field < len(names)
            and unit == _UNITS.get(params.get("unit"))
            and skip in (0, 1)
            and isinstance(names, list)
            and isinstance(kinds, list)
            and len(names) == len(kinds)
            and all(isinstance(n, str) for n in names)
            and all(k in _KINDS for k in kinds)
            and name == names[field]
            and (not isinstance(ts_col, str) or (skip == 1 and (params.get("names") is not None or ts_col == name)))
            and (not _is_int(ts_col) or ts_col == field)
        )
    except (KeyError, TypeError, ValueError):
        return False


def check_entries(e: np.ndarray, info: dict[str, Any], size: int) -> str:
    """Why entries cannot belong to a file of ``size`` bytes with this summary ("" if they can)."""
    need = ("rows", "lines", "first_ts", "last_ts", "d_size", "c_size", "data_off", "bad_frame", "compression")
    more = ("frames", "truncated", "bad_c_off", "seek_table_frames", "partial", "junk_offset")
    if any(not _is_int(info.get(k)) for k in need) or any(not _is_int(info.get(k, 0)) for k in more):
        return "summary is incomplete"
    if info["compression"] not in (0, 1, 2) or not isinstance(info.get("bad_msg", ""), str):
        return "summary is inconsistent"
    if len(e) == 0:
        return "" if info["rows"] == 0 else "no entries for a file with rows"
    ts, line, row, d_off, c_off, d_at = (e[name] for name in ENTRY.names)
    ok = (
        row[0] == 0
        and ts[0] == info["first_ts"]
        and ts[-1] <= info["last_ts"]
        and np.all(np.diff(ts) >= 0)
        and np.all(np.diff(line) > 0)
        and np.all(np.diff(row) > 0)
        and np.all(np.diff(d_off) > 0)
        and line[-1] <= info["lines"]
        and row[-1] < info["rows"]
        and d_off[0] >= info["data_off"]
        and d_off[-1] < info["d_size"]
        and np.all((c_off >= 0) & (c_off <= size) & (d_at >= 0) & (d_at <= d_off))
    )
    return "" if ok else "entries are inconsistent"


# ---------------------------------------------------------------------------- book checkpoints


class CorruptCheckpoint(ValueError):
    """A checkpoint's levels are damaged (the caller rebuilds the checkpoints)."""


class Checkpoints:
    """The book checkpoints of one raw file (:data:`CHECKPOINT` rows, sorted by ``t``) with
    the parameters they were made with; levels come from memory (just built) or from the
    sidecar, read and checked one checkpoint at a time."""

    def __init__(self, params: dict[str, Any], table: np.ndarray, levels=None, *, source=None) -> None:
        self.params, self.table = params, table
        self._levels = levels  # [(price, qty)] in memory, or None: read from `source`
        self._source = source  # (sidecar path, offset of the checkpoint part, sidecar size)

    @classmethod
    def from_reader(cls, params: dict[str, Any], cp: dict[str, np.ndarray], lv: dict[str, np.ndarray]) -> Checkpoints:
        """From ``_core.Reader.checkpoints()``: the rows and their levels."""
        n = len(cp["t"])
        table = np.zeros(n, CHECKPOINT)
        for name in ("t", "last_u", "last_ts", "last_local", "market", "nbid", "nask"):
            table[name] = cp[name]
        ends = np.cumsum(table["nbid"] + table["nask"])
        starts = ends - (table["nbid"] + table["nask"])
        levels = [(lv["price"][a:b].copy(), lv["qty"][a:b].copy()) for a, b in zip(starts, ends)]
        return cls(params, table, levels)

    def __len__(self) -> int:
        return len(self.table)

    def levels(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(side, price, qty) of checkpoint i, bids then asks, best first.  Raises
        :class:`CorruptCheckpoint` when its block in the sidecar is damaged."""
        row = self.table[i]
        nb, na = int(row["nbid"]), int(row["nask"])
        if self._levels is not None:
            price, qty = self._levels[i]
        else:
            price, qty = self._read_levels(row, nb + na)
        side = np.concatenate([np.ones(nb, np.int8), -np.ones(na, np.int8)])
        return side, price, qty

    def _read_levels(self, row: np.void, n: int) -> tuple[np.ndarray, np.ndarray]:
        path, at, size = self._source
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                    raise CorruptCheckpoint("the sidecar changed since its checkpoints were read")
                block = os.pread(fd, int(row["size"]), at + int(row["off"]))
            finally:
                os.close(fd)
        except OSError as e:
            raise CorruptCheckpoint(f"cannot read it ({e.strerror or e})") from None
        if len(block) != row["size"] or zlib.crc32(block) != row["crc"]:
            raise CorruptCheckpoint(f"the levels of the checkpoint at t={int(row['t'])} fail their checksum")
        d = zlib.decompressobj()
        try:
            raw = d.decompress(block, 16 * n)
        except zlib.error as e:
            raise CorruptCheckpoint(f"the levels do not decompress ({e})") from None
        if len(raw) != 16 * n or not d.eof or d.unconsumed_tail:
            raise CorruptCheckpoint("the levels have another size than the table says")
        a = np.frombuffer(raw, "<f8")
        price, qty = a[:n], a[n:]
        nb = int(row["nbid"])
        bids, asks = price[:nb], price[nb:]
        ok = (
            np.all(np.isfinite(a))
            and np.all(price > 0)
            and np.all(qty > 0)
            and np.all(np.diff(bids) < 0)
            and np.all(np.diff(asks) > 0)
        )
        if not ok:
            raise CorruptCheckpoint("the levels are not a book (sorted sides, prices and sizes > 0)")
        return price.astype(np.float64), qty.astype(np.float64)

    def pack(self, at: int) -> bytes:
        """The checkpoint part of a sidecar whose index part is ``at`` bytes long."""
        levels = (np.concatenate(self.levels(i)[1:]).astype("<f8") for i in range(len(self)))
        blocks = [zlib.compress(a.tobytes(), 1) for a in levels]
        table = self.table.copy()
        table["size"] = [len(b) for b in blocks]
        table["crc"] = [zlib.crc32(b) for b in blocks]
        body = json.dumps({"params": self.params}, separators=(",", ":")).encode()
        head = _CP_HEAD.pack(_CP_MAGIC, len(body), len(table))
        table_bytes = np.ascontiguousarray(table, CHECKPOINT).tobytes()
        start = len(head) + len(body) + len(table_bytes) + 4
        table["off"] = start + np.concatenate([[0], np.cumsum(table["size"])[:-1]]).astype(np.int64)
        part = head + body + np.ascontiguousarray(table, CHECKPOINT).tobytes()
        return part + struct.pack("<I", zlib.crc32(part)) + b"".join(blocks)


def load_checkpoints(path: str, params: dict[str, Any]) -> tuple[Checkpoints | None, str]:
    """The checkpoints of the sidecar at ``path`` when they were made with ``params`` (which
    name the data file's stamp and what came before it), else ``(None, why)``: ``why`` is ""
    when there are none, starts with "stale" when made otherwise, "corrupt" when damaged."""
    got, why = _read(path, "checkpoints")
    if got is None:
        return None, why
    data, at, size = got
    part = size - _TRAILER.size - at
    try:
        if len(data) < _CP_HEAD.size or data[:6] != _CP_MAGIC:
            return None, "corrupt checkpoints: not a checkpoint part"
        _, n_json, n = _CP_HEAD.unpack_from(data)
        end = _CP_HEAD.size + n_json + n * CHECKPOINT.itemsize
        if end + 4 > len(data):
            return None, "corrupt checkpoints: the table runs past the end"
        if struct.unpack_from("<I", data, end)[0] != zlib.crc32(data[:end]):
            return None, "corrupt checkpoints: checksum mismatch"
        header = json.loads(data[_CP_HEAD.size : _CP_HEAD.size + n_json])
        if not isinstance(header, dict) or header.get("params") != params:
            return None, "stale checkpoints: made with other parameters or other data"
        table = np.frombuffer(data, CHECKPOINT, n, _CP_HEAD.size + n_json).copy()
        why = _check_checkpoints(table, end + 4, part)
        if why:
            return None, f"corrupt checkpoints: {why}"
    except (ValueError, TypeError, KeyError, RecursionError) as e:
        return None, f"corrupt checkpoints: malformed ({type(e).__name__}: {e})"
    return Checkpoints(params, table, source=(path, at, size)), ""


def _check_checkpoints(t: np.ndarray, first: int, size: int) -> str:
    """Why a checkpoint table cannot describe blocks from byte ``first`` to ``size`` of its part."""
    if len(t) == 0:
        return "" if first == size else "bytes after an empty table"
    n = t["nbid"] + t["nask"]
    ends = t["off"] + t["size"]
    ok = (
        np.all(np.diff(t["t"]) > 0)
        and np.all(t["last_local"] < t["t"])
        and np.all((t["market"] == 1) | (t["market"] == 2))
        and np.all(t["last_u"] >= 0)
        and np.all((t["nbid"] >= 0) & (t["nask"] >= 0) & (n <= _MAX_LEVELS))
        and np.all(t["size"] > 0)
        and t["off"][0] == first
        and np.all(t["off"][1:] == ends[:-1])
        and ends[-1] == size
    )
    return "" if ok else "the table is inconsistent"
