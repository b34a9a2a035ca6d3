"""Drive ``lobfast-collect`` (csrc/collector) from Python.

The recorder runs as its own process in its own session, so a notebook kernel that restarts
(or a terminal that closes) does not end a recording; ``stop()`` does, or ``Collector.attach``
finds a running one again from its output directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .errors import LobError

BINARY = Path(__file__).resolve().parent / "lobfast-collect"

_OPTIONS = {
    "streams": "--streams",
    "rotate": "--rotate",
    "max_file_size": "--max-file-size",
    "snapshot_every": "--snapshot-every",
    "snapshot_limit": "--snapshot-limit",
    "rest_weight": "--rest-weight",
    "ws_url": "--ws-url",
    "rest_url": "--rest-url",
    "max_streams": "--max-streams",
    "conn_lifetime": "--conn-lifetime",
    "stall_timeout": "--stall-timeout",
    "frame": "--frame",
    "frame_bytes": "--frame-bytes",
    "level": "--level",
    "stats_every": "--stats-every",
}


HOW_TO_GET_IT = (
    "the recorder is built with lobfast where libwebsockets is found: install it "
    "(Debian/Ubuntu: apt-get install libwebsockets-dev; Fedora: dnf install libwebsockets-devel), "
    "then build lobfast again with LOBFAST_COLLECTOR=1 (`LOBFAST_COLLECTOR=1 pip install --force-reinstall "
    "--no-binary lobfast lobfast`; in a source tree: make build)"
)


def binary() -> Path:
    """The collector executable built with the package; LobError saying how to get it when there is none."""
    if not BINARY.is_file():
        raise LobError(f"{BINARY} is missing: this lobfast was built without its recorder; {HOW_TO_GET_IT}")
    if not os.access(BINARY, os.X_OK):
        raise LobError(f"{BINARY} is not executable (chmod +x it, or build lobfast again)")
    return BINARY


def _arg(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


class Collector:
    """Record Binance ``venue`` ("spot" or "usdm") streams of ``symbols`` into ``out``.

    Files land in ``out/<venue>/<symbol>/<YYYYmmdd-HHMMSS.mmm>.zst``, named by their first line (raw lines,
    seekable zstd); the collector's log is ``out/<venue>/collector.log`` and its latest statistics
    ``out/<venue>/stats.json``.  Keyword options are the command's (``streams=["depth@100ms",
    "trade"]``, ``rotate="1h"``, ``max_file_size="1GB"``, ``snapshot_every="15m"``, ``ws_url=``,
    ``rest_url=``, ...): see ``lobfast collect --help``.
    """

    def __init__(self, venue: str, symbols, out, **options) -> None:
        if venue not in ("spot", "usdm"):
            raise ValueError(f"venue must be 'spot' or 'usdm', not {venue!r}")
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}; known: {', '.join(_OPTIONS)}")
        if isinstance(symbols, str):
            symbols = symbols.split(",")
        self.venue = venue
        self.symbols = [s.strip().lower() for s in symbols if s.strip()]
        self.out = Path(out)
        self.dir = self.out / venue
        self.options = options
        self.stats_file = self.dir / "stats.json"
        self.log_file = self.dir / "collector.log"
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        args = [str(binary()), "--venue", self.venue, "--symbols", ",".join(self.symbols), "--out", str(self.out)]
        for key, value in self.options.items():
            if value is not None:
                args += [_OPTIONS[key], _arg(value)]
        return args + ["--stats-file", str(self.stats_file), "--quiet"]

    def start(self, wait: float = 1.0) -> Collector:
        """Start recording; raises LobError with the collector's own message if it exits within ``wait`` s."""
        if self.running:
            raise LobError(f"this collector is already running (pid {self.pid})")
        argv = self.argv()  # before anything is made: says how to get the recorder if there is none
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_file, "ab")
        except OSError:
            log = None  # the collector checks the directory itself and says why
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log or subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            raise LobError(f"cannot start {argv[0]}: {e}") from None
        finally:
            if log is not None:
                log.close()
        self.pid = self._proc.pid
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                message = self._last_error()
                if self._proc.stderr is not None:
                    self._proc.stderr.close()
                raise LobError(f"lobfast-collect exited with status {self._proc.returncode}: {message}")
            time.sleep(0.02)
        if self._proc.stderr is not None:
            self._proc.stderr.close()  # nowhere to log: the directory could not be made, yet it runs
        return self

    @classmethod
    def attach(cls, out, venue: str = "spot") -> Collector:
        """The collector recording into ``out/<venue>`` (started earlier, maybe by another process).

        Raises LobError when none is: the pid in ``collector.pid`` counts only while that process is
        lobfast-collect and the file is locked (a recorder holds the lock until it exits; a pid left
        behind by one that was killed may since name an unrelated process).
        """
        c = cls(venue, [], out)
        pid, why = _recorder(c.dir)
        if pid is None:
            raise LobError(f"no recorder is running in {c.dir}: {why}")
        c.pid = pid
        return c

    @property
    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and _recorder(self.dir)[0] == self.pid

    def stats(self) -> dict:
        """The latest statistics the collector wrote (every ``stats_every``; also once at exit)."""
        try:
            return json.loads(self.stats_file.read_text())
        except FileNotFoundError:
            return {}

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait: the collector flushes and writes every seek table.  Returns the exit status."""
        if self.pid is None:
            raise LobError("this collector was never started")
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
            try:
                code = self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                raise LobError(f"lobfast-collect (pid {self.pid}) did not stop within {timeout} s") from None
        else:
            pid, why = _recorder(self.dir)
            if pid != self.pid:  # it exited since attach(): its pid may name another process now
                raise LobError(f"no recorder is running in {self.dir} (pid {self.pid} was not signalled): {why}")
            code = _stop_foreign(self.pid, timeout)
        if code not in (0, None):
            raise LobError(f"lobfast-collect exited with status {code}: {self._last_error()}")
        return 0 if code is None else code

    def files(self, symbol: str) -> list[Path]:
        """The files recorded for ``symbol``, oldest first."""
        return sorted((self.dir / symbol.lower()).glob("*.zst"))

    def _last_error(self) -> str:
        if self._proc is not None and self._proc.stderr is not None and not self._proc.stderr.closed:
            lines = self._proc.stderr.read().decode(errors="replace").splitlines()
            return (lines or ["(no message)"])[-1]
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        errors = [ln for ln in lines if "error:" in ln]
        return (errors or lines or ["(no message)"])[-1]

    def __enter__(self) -> Collector:
        return self.start() if not self.running else self

    def __exit__(self, *exc) -> None:
        if self.running:
            self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Collector({self.venue}, {len(self.symbols)} symbols, {self.dir}, {state}, pid={self.pid})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _is_recorder(pid: int) -> bool:
    """Process `pid` runs lobfast-collect (by its executable, else by its command line)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        return os.path.basename(exe.removesuffix(" (deleted)")) == BINARY.name
    except OSError:
        pass  # another user's process: its command line is still readable
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return os.path.basename(argv0.decode(errors="replace")) == BINARY.name


def _locked(path: Path) -> bool | None:
    """Whether some process holds the lock on `path` (None: there is no such file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if it was taken
    return False


def _recorder(directory: Path) -> tuple[int | None, str]:
    """(pid, "") of the recorder running in `directory`, or (None, why none is)."""
    pid_file = directory / "collector.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except FileNotFoundError:
        return None, "there is no collector.pid (the last recorder exited cleanly, or none ever ran)"
    except (OSError, ValueError, IndexError) as e:
        return None, f"{pid_file} cannot be read as a pid ({e})"
    if not _alive(pid):
        return None, f"the recorder (pid {pid}) has exited"
    if not _is_recorder(pid):
        return None, f"pid {pid} from {pid_file} is another program now (the recorder has exited)"
    if not _locked(pid_file):
        return None, f"pid {pid} is lobfast-collect but does not hold the lock on {pid_file}"
    return pid, ""


def _stop_foreign(pid: int, timeout: float) -> None:
    """SIGTERM a collector that is not our child, and wait for it to go (its status is not ours to read)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise LobError(f"lobfast-collect (pid {pid}) did not stop within {timeout} s")
        time.sleep(0.02)
    return None


def main(argv: list[str]) -> int:
    """``lobfast collect ...``: the collector in the foreground, its options as they are."""
    try:
        args = [str(binary()), *argv]
        sys.stdout.flush()
        os.execv(args[0], args)
    except (LobError, OSError) as e:
        print(f"lobfast collect: error: {e}", file=sys.stderr)
        return 1
    return 0  # not reached
