"""``lobfast convert``: rewrite a recording as zstd frames that a reader can seek in.

gzip cannot be decompressed from the middle, and a zstd file written as one frame cannot
either.  :func:`convert` cuts the text into independent zstd frames (about one second of
data each, as the collector writes them, and never more than ``frame_bytes``), ends the file
with a zstd seekable-format seek table, and keeps every byte of every line.  A
:class:`~lobfast.TimeIndex` over the result decompresses only the frames a window needs.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any

from . import _core
from .errors import LobWarning
from .reading import MAX_LINE, check_max_line
from .timeindex import HEAD_BYTES, _layout
from .times import parse_duration


def convert(
    src,
    dst,
    *,
    frame: str | int = "1s",
    frame_bytes: int = 4 << 20,
    level: int = 3,
    format: str = "auto",
    ts_col: str | int = "timestamp",
    unit: str = "us",
    max_line: int = MAX_LINE,
) -> dict[str, Any]:
    """Rewrite ``src`` (plain, gzip or zstd; raw lines or CSV) as seekable zstd frames in ``dst``.

    A frame ends when the next line's time is ``frame`` (a duration such as ``"1s"``, or ns)
    after the frame's first line, or when it would pass ``frame_bytes``; lines are never
    split.  ``format``/``ts_col``/``unit`` find the time as :class:`~lobfast.TimeIndex` does.
    ``dst`` appears only when complete (written to a temporary file, then renamed): an
    error or Ctrl-C (KeyboardInterrupt, within a fraction of a second) leaves nothing.
    A line longer than ``max_line`` bytes (default 64 MiB) stops it with a LobError.

    Returns the counts: lines, frames, bytes_in (text), bytes_out (file), and
    partial_line_bytes / truncated_bytes when ``src`` was cut off (then with a warning), and
    junk_offset (-1, or where junk after ``src``'s compressed data begins: it is left out,
    with a warning).
    """
    max_line = check_max_line(max_line)
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ValueError("dst must not be src")
    frame_ns = parse_duration(frame, "frame")
    if frame_ns <= 0:
        raise ValueError(f"frame must be a positive duration, not {frame!r}")
    layout = _layout(src, _core.head(src, HEAD_BYTES), format, ts_col, unit, None)
    fd, tmp = tempfile.mkstemp(prefix=".lobfast-convert-", dir=os.path.dirname(os.path.abspath(dst)))
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as a file created by open() would be
    try:
        stats = _core.convert(src, tmp, (*layout["key"], max_line), frame_ns, int(frame_bytes), int(level))
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise
    if stats["truncated_bytes"] or stats["partial_line_bytes"]:
        warnings.warn(
            f"{src} is cut off: {stats['truncated_bytes']} compressed bytes and an incomplete last line of "
            f"{stats['partial_line_bytes']} bytes were left out of {dst}",
            LobWarning,
            stacklevel=2,
        )
    if stats["junk_offset"] >= 0:
        warnings.warn(
            f"{src}: the bytes from byte {stats['junk_offset']} on are not compressed data (junk or zero padding "
            f"after the end); they were left out of {dst}",
            LobWarning,
            stacklevel=2,
        )
    return stats
