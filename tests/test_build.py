"""The build needs only what it uses: the extension builds and works without libwebsockets.

setup.py is run as a user without libwebsockets-dev would run it (pkg-config finds libzstd
and zlib only), into a temporary folder; the package built there is then used in a fresh
interpreter, which reads a bundled recording and says how to get the recorder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pkg_config_without_libwebsockets(tmp: Path) -> dict[str, str]:
    """An environment in which pkg-config sees libzstd and zlib, and nothing else."""
    if shutil.which("pkg-config") is None:
        pytest.fail("pkg-config is needed to find libzstd and zlib (Debian: apt-get install pkg-config)")
    pcdir = tmp / "pkgconfig"
    pcdir.mkdir()
    for name in ("libzstd", "zlib"):
        found = subprocess.run(["pkg-config", "--variable=pcfiledir", name], capture_output=True, text=True)
        if found.returncode != 0:
            pytest.fail(f"pkg-config cannot find {name}: {found.stderr.strip()}")
        shutil.copy(Path(found.stdout.strip()) / f"{name}.pc", pcdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOBFAST_", "PKG_CONFIG_"))}
    env.pop("LD_PRELOAD", None)  # `make test-asan` preloads libasan into Python, not into compilers
    env["PKG_CONFIG_LIBDIR"] = str(pcdir)
    hidden = subprocess.run(["pkg-config", "--exists", "libwebsockets"], env=env)
    assert hidden.returncode != 0, "libwebsockets is still visible to pkg-config"
    return env


def setup_py(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "setup.py", "-q", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_extension_builds_and_runs_without_libwebsockets(tmp_path):
    env = pkg_config_without_libwebsockets(tmp_path)
    lib = tmp_path / "lib"
    skip = shutil.ignore_patterns("*.so", "lobfast-collect", "__pycache__", ".built")
    shutil.copytree(ROOT / "lobfast", lib / "lobfast", ignore=skip)
    build = setup_py(
        {**env, "LOBFAST_COLLECTOR": "0"}, "build_ext", "--build-lib", str(lib), "--build-temp", str(tmp_path / "tmp")
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert len(list((lib / "lobfast").glob("_core*.so"))) == 1
    assert not (lib / "lobfast" / "lobfast-collect").exists()

    use = (
        "import pathlib, lobfast, lobfast.datasets\n"
        f"assert pathlib.Path(lobfast._core.__file__).is_relative_to({str(lib)!r}), lobfast._core.__file__\n"
        "bundled = lobfast.datasets.path('spot_btcusdt_20240808')\n"
        f"assert bundled.is_relative_to({str(lib)!r}), bundled\n"
        "md = lobfast.read_binance(bundled)\n"
        "print(len(md.depth), len(md.trades))\n"
        "try:\n"
        "    lobfast.Collector('spot', 'btcusdt', 'out').start()\n"
        "except lobfast.LobError as e:\n"
        "    print(e)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", use], cwd=tmp_path, env={**env, "PYTHONPATH": str(lib)}, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    depth, trades, message = run.stdout.split(maxsplit=2)
    assert int(depth) > 0 and int(trades) > 0
    assert "libwebsockets" in message and "LOBFAST_COLLECTOR=1" in message

    cli = subprocess.run(
        [sys.executable, "-m", "lobfast.cli", "collect", "--help"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(lib)},
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert "lobfast collect: " in cli.stderr and "libwebsockets" in cli.stderr


def test_collector_on_demand_fails_clearly_without_libwebsockets(tmp_path):
    env = pkg_config_without_libwebsockets(tmp_path)
    build = setup_py(
        {**env, "LOBFAST_COLLECTOR": "1"},
        "build_ext",
        "--build-lib",
        str(tmp_path / "lib"),
        "--build-temp",
        str(tmp_path / "tmp"),
    )
    assert build.returncode != 0
    assert "LOBFAST_COLLECTOR=1" in build.stderr and "libwebsockets-dev" in build.stderr
    assert "Traceback" not in build.stderr
    assert not (tmp_path / "tmp").exists(), "the refusal comes before anything is compiled"


def test_collector_switch_takes_only_known_values(tmp_path):
    build = setup_py(
        {**{k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}, "LOBFAST_COLLECTOR": "yes"},
        "build_ext",
        "--build-lib",
        str(tmp_path / "lib"),
        "--build-temp",
        str(tmp_path / "tmp"),
    )
    assert build.returncode != 0 and "LOBFAST_COLLECTOR must be 0, 1 or auto, not 'yes'" in build.stderr
    assert not (tmp_path / "tmp").exists()
