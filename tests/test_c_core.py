"""The pure-C core's own unit tests (tests/c), built under ASan/UBSan and run.

They check csrc/core without Python in the way: number and JSON parsing, tables, the
plain/gzip/zstd sources and their windows, the reader driving the Binance format over
crafted input, the kernels, and the time index (keys, entries per zstd frame, corrupt and
cut frames, CSV columns, the seekable zstd writer and convert).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_SOURCES = sorted((ROOT / "csrc" / "core").rglob("*.c"))
TEST_SOURCES = sorted((ROOT / "tests" / "c").glob("*.c"))
# trailing struct fields left out of an initializer are zero by design (as in setup.py)
CFLAGS = [
    "-Icsrc",
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wno-missing-field-initializers",
    "-Werror",
    "-fsanitize=address,undefined",
    "-g",
    "-pthread",
]


def sanitizer_env() -> dict[str, str]:
    """The environment for the compiler and the test binary.

    `make test-asan` runs pytest with libasan preloaded into Python and leak checking off;
    neither must leak into the binary, which links its own runtime and should find leaks.
    """
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:halt_on_error=1"
    # UBSan keeps going after a report so one run shows every problem; the test fails on it
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=0"
    return env


def pkg_config_flags() -> list[str]:
    if shutil.which("pkg-config") is None:
        pytest.fail("pkg-config is needed to find libzstd and zlib (Debian: apt-get install pkg-config)")
    proc = subprocess.run(["pkg-config", "--cflags", "--libs", "libzstd", "zlib"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"pkg-config cannot find libzstd/zlib: {proc.stderr.strip()}")
    return shlex.split(proc.stdout)


# gcc is the build compiler and must be there; clang's UBSan adds checks gcc's lacks (e.g.
# arithmetic on NULL), so the suite runs under it too where it is installed.
COMPILERS = [
    pytest.param("gcc", marks=pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")),
    pytest.param(
        "clang",
        marks=pytest.mark.skipif(
            shutil.which("clang") is None, reason="clang is not installed (optional: stricter UBSan)"
        ),
    ),
]


@pytest.mark.parametrize("cc", COMPILERS)
def test_c_core(tmp_path, cc):
    exe = tmp_path / "test_core"
    cmd = [cc, *CFLAGS, *map(str, TEST_SOURCES), *map(str, CORE_SOURCES), *pkg_config_flags(), "-lm"]
    cmd += ["-o", str(exe)]
    env = sanitizer_env()
    build = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert build.returncode == 0, f"{shlex.join(cmd)}\n{build.stdout}{build.stderr}"

    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    run = subprocess.run([str(exe), str(fixtures)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    out = run.stdout.splitlines()
    failed = [line for line in out if not line.endswith(": PASSED")]
    report = "\n".join(failed) + "\n" + run.stderr[-8000:]
    assert run.returncode == 0, f"C unit tests failed (exit {run.returncode}):\n{report}"
    assert "runtime error:" not in run.stderr, f"UndefinedBehaviorSanitizer reports:\n{report}"
    assert "Sanitizer" not in run.stderr, f"sanitizer reports:\n{report}"
