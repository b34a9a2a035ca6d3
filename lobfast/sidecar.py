"""The ``.lfidx`` sidecar: a time index saved next to its data file, never trusted blindly.

Layout: ``LFIDX`` magic, a format version, a JSON header (what file it indexes: size, mtime
and a fingerprint of its first and last 64 KiB; the parameters it was built with; the
columns; the summary), the entries (:data:`ENTRY`: six little-endian int64 each), and a
CRC-32 of everything before it.  :func:`load` returns ``None`` with the reason when anything does not match, so the
caller rebuilds: a file that grew, was rewritten, or a sidecar that was cut or damaged.  Nothing
in a sidecar is trusted to be well formed: it is opened without following a symbolic link and
without waiting (a FIFO), must be a regular file of bounded size, and every field read from it
is checked (a malformed one means "rebuild", never an error about the data file).
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
VERSION = 1
# an index entry as the C core lays it out (lobfast.timeindex checks this at import): a line
# and where decompression restarts to reach it
ENTRY = np.dtype([(name, "<i8") for name in ("ts", "line", "row", "d_off", "c_off", "d_at")])
_HEAD = struct.Struct("<6sHI")  # magic, version, JSON length
_FINGERPRINT_BYTES = 1 << 16
_MAX_BYTES = 1 << 30  # the largest sidecar read: 22 million entries (entries * 48 + header)


def source_stamp(path: str) -> dict[str, int]:
    """What identifies the indexed file's content: size, mtime and a CRC-32 of its ends."""
    st = os.stat(path)
    with open(path, "rb") as f:
        crc = zlib.crc32(f.read(_FINGERPRINT_BYTES))
        if st.st_size > _FINGERPRINT_BYTES:
            f.seek(max(st.st_size - _FINGERPRINT_BYTES, _FINGERPRINT_BYTES))
            crc = zlib.crc32(f.read(), crc)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "fingerprint": crc}


def save(path: str, header: dict[str, Any], entries: np.ndarray) -> None:
    """Write atomically (temporary file + rename), so a reader never sees half a sidecar.
    Raises OSError when the directory cannot be written."""
    body = json.dumps(header, separators=(",", ":")).encode()
    data = _HEAD.pack(MAGIC, VERSION, len(body)) + body + np.ascontiguousarray(entries, ENTRY).tobytes()
    data += struct.pack("<I", zlib.crc32(data))
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


def _read(path: str) -> tuple[bytes | None, str]:
    """The sidecar's bytes, or (None, why): a missing one gives why == ""."""
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
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(st.st_size + 1)
        if len(data) != st.st_size:
            return None, "corrupt: its size changed while it was read"
        return data, ""
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
