"""The ``.lfidx`` sidecar: a time index saved next to its data file, never trusted blindly.

Layout: ``LFIDX`` magic, a format version, a JSON header (what file it indexes: size, mtime
and a fingerprint of its first and last 64 KiB; the parameters it was built with; the
columns; the summary), the entries as little-endian int64 rows, and a CRC-32 of everything
before it.  :func:`load` returns ``None`` with the reason when anything does not match, so the
caller rebuilds: a file that grew, was rewritten, or a sidecar that was cut or damaged.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from typing import Any

import numpy as np

MAGIC = b"LFIDX\0"
VERSION = 1
FIELDS = 6  # ts, line, row, d_off, c_off, d_at
_HEAD = struct.Struct("<6sHI")  # magic, version, JSON length
_FINGERPRINT_BYTES = 1 << 16


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
    data = _HEAD.pack(MAGIC, VERSION, len(body)) + body + np.ascontiguousarray(entries, "<i8").tobytes()
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
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, ""
    except OSError as e:
        return None, f"corrupt: cannot read it ({e})"
    if len(data) < _HEAD.size + 4 or data[:6] != MAGIC:
        return None, "corrupt: not a lobfast index"
    if struct.unpack("<I", data[-4:])[0] != zlib.crc32(data[:-4]):
        return None, "corrupt: checksum mismatch"
    _, version, n_json = _HEAD.unpack_from(data)
    if version != VERSION:
        return None, f"stale: index format version {version}, this lobfast writes {VERSION}"
    try:
        header = json.loads(data[_HEAD.size : _HEAD.size + n_json])
        raw = data[_HEAD.size + n_json : -4]
        entries = np.frombuffer(raw, "<i8").reshape(-1, FIELDS).astype(np.int64, copy=False)
    except ValueError as e:
        return None, f"corrupt: {e}"
    if header.get("source") != stamp:
        return None, "stale: the data file changed since it was indexed"
    if header.get("params") != params:
        return None, "stale: built with other parameters"
    if not _layout_ok(header.get("layout")):
        return None, "corrupt: the layout is incomplete"
    why = check_entries(entries, header.get("info", {}), stamp["size"])
    if why:
        return None, f"corrupt: {why}"
    return (header, entries), ""


def _layout_ok(layout: Any) -> bool:
    try:
        sep, field, unit, skip, name = layout["key"]
        return (
            layout["format"] in ("csv", "raw")
            and sep in (",", " ")
            and isinstance(field, int)
            and isinstance(unit, int)
            and isinstance(skip, int)
            and isinstance(name, str)
            and len(layout["names"]) == len(layout["kinds"])
        )
    except (KeyError, TypeError, ValueError):
        return False


def check_entries(e: np.ndarray, info: dict[str, Any], size: int) -> str:
    """Why entries cannot belong to a file of ``size`` bytes with this summary ("" if they can)."""
    need = ("rows", "lines", "first_ts", "last_ts", "d_size", "c_size", "data_off", "bad_frame", "compression")
    if any(not isinstance(info.get(k), int) for k in need):
        return "summary is incomplete"
    if len(e) == 0:
        return "" if info["rows"] == 0 else "no entries for a file with rows"
    ts, line, row, d_off, c_off, d_at = e.T
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
