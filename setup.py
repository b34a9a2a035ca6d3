"""Build lobfast._core: the pure-C core (csrc/core) plus its binding (csrc/py), and the
recorder executable lobfast/lobfast-collect (csrc/collector + the same core objects, libwebsockets).

System libraries come from pkg-config: libzstd and zlib always, libwebsockets for the recorder
only.  Environment switches:
  LOBFAST_COLLECTOR=auto  the recorder is built where pkg-config finds libwebsockets (the default);
                    =1     it must be built (an error names what is missing); =0 it is not built
  LOBFAST_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer, -O1, frame pointers
  LOBFAST_DEBUG=1     -O0 -g3, assertions on
  LOBFAST_WERROR=1    warnings are errors
  LOBFAST_COVERAGE=1  gcov instrumentation
"""

import os
import shlex
import subprocess
import sys
from glob import glob

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBIAN = {"libzstd": "libzstd-dev", "zlib": "zlib1g-dev", "libwebsockets": "libwebsockets-dev"}
CORE_LIBS = ("libzstd", "zlib")
COLLECTOR_LIBS = (*CORE_LIBS, "libwebsockets")
CORE_SOURCES = sorted(glob("csrc/core/**/*.c", recursive=True))
CORE_HEADERS = sorted(glob("csrc/core/**/*.h", recursive=True))


def missing(*packages):
    """The `packages` pkg-config does not find, each with the Debian package that has it."""
    try:
        return [
            f"{pc} (Debian: apt-get install {DEBIAN[pc]})"
            for pc in packages
            if subprocess.run(["pkg-config", "--exists", pc], capture_output=True).returncode != 0
        ]
    except FileNotFoundError:
        raise SystemExit("lobfast needs pkg-config (Debian: apt-get install pkg-config)") from None


def pkg_config(*packages):
    """Compiler and linker flags for `packages`, or a SystemExit naming what is missing."""
    absent = missing(*packages)
    if absent:
        raise SystemExit("lobfast needs these libraries, not found by pkg-config: " + ", ".join(absent))
    out = subprocess.run(
        ["pkg-config", "--cflags", "--libs", *packages], capture_output=True, text=True, check=True
    ).stdout
    return shlex.split(out)


def flag(name):
    return os.environ.get(name, "") not in ("", "0")


COLLECTOR = os.environ.get("LOBFAST_COLLECTOR", "") or "auto"
if COLLECTOR not in ("0", "1", "auto"):
    raise SystemExit(f"LOBFAST_COLLECTOR must be 0, 1 or auto, not {COLLECTOR!r}")


def collector_flags():
    """pkg-config's flags for the recorder, or None when it is not to be built (said why)."""
    if COLLECTOR == "0":
        return None
    absent = missing("libwebsockets")
    if absent and COLLECTOR == "1":
        raise SystemExit(
            "LOBFAST_COLLECTOR=1: the recorder lobfast-collect needs libwebsockets, not found by pkg-config: "
            + ", ".join(absent)
        )
    if absent:
        print(
            "lobfast: the recorder lobfast-collect is not built: pkg-config does not find libwebsockets "
            "(Debian: apt-get install libwebsockets-dev, then build again; LOBFAST_COLLECTOR=0 silences this)",
            file=sys.stderr,
        )
        return None
    return pkg_config(*COLLECTOR_LIBS)


system_flags = pkg_config(*CORE_LIBS)

# -fno-math-errno: sqrt/log compile to one instruction (the core never reads errno after math)
compile_args = [
    "-std=c11",
    "-fno-math-errno",
    "-fvisibility=hidden",
    "-Wall",
    "-Wextra",
    "-Wno-missing-field-initializers",
    "-pthread",  # the reader's worker threads (core/io/zpar.c)
]
link_args = ["-pthread"]
if flag("LOBFAST_SANITIZE"):
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    compile_args += san + ["-O1", "-g"]
    link_args += san
elif flag("LOBFAST_DEBUG"):
    compile_args += ["-O0", "-g3", "-UNDEBUG"]
else:
    compile_args += ["-O2", "-g0"]
if flag("LOBFAST_WERROR"):
    compile_args.append("-Werror")
if flag("LOBFAST_COVERAGE"):
    compile_args.append("--coverage")
    link_args.append("--coverage")

core = Extension(
    "lobfast._core",
    sources=CORE_SOURCES + sorted(glob("csrc/py/*.c")),
    include_dirs=["csrc", numpy.get_include()],
    depends=CORE_HEADERS + sorted(glob("csrc/py/*.h")),
    define_macros=[
        ("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
        # built against NumPy 2, runs on NumPy >= 1.25's ABI
        ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION"),
    ],
    extra_compile_args=compile_args + [f for f in system_flags if not f.startswith(("-l", "-L"))],
    extra_link_args=link_args + [f for f in system_flags if f.startswith(("-l", "-L"))],
)


def object_of(source, build_temp):
    """Where build_ext puts the object of `source` (a relative path, as CORE_SOURCES are)."""
    return os.path.join(build_temp, os.path.splitext(source)[0] + ".o")


def fresh(obj, source):
    return os.path.exists(obj) and all(os.path.getmtime(d) <= os.path.getmtime(obj) for d in [source, *CORE_HEADERS])


class build_ext_and_collector(build_ext):
    """build_ext, then the recorder (see LOBFAST_COLLECTOR): a plain executable next to the
    extension, linked with the very core objects the extension was built from (compiled once,
    with the same flags, sanitizers included)."""

    def run(self):
        flags = collector_flags()  # decided (or refused) before anything is compiled
        core_objects = [object_of(src, self.build_temp) for src in CORE_SOURCES]
        if flags is not None and not all(map(fresh, core_objects, CORE_SOURCES)):
            # the extension is up to date but its objects are gone or older (build/ removed, or
            # it was built elsewhere): build it again, so the recorder links what it runs
            self.force = True
        super().run()
        if flags is not None:
            self.build_collector(flags, core_objects)

    def build_collector(self, flags, core_objects):
        cc = self.compiler
        cflags = [f for f in compile_args if f != "-fvisibility=hidden"]
        cflags += [f for f in flags if not f.startswith(("-l", "-L"))]
        objects = cc.compile(
            sorted(glob("csrc/collector/*.c")),
            output_dir=os.path.join(self.build_temp, "collector"),
            include_dirs=["csrc"],
            extra_postargs=cflags + ["-D_GNU_SOURCE"],
        )
        dest_dir = "lobfast" if self.inplace else os.path.join(self.build_lib, "lobfast")
        os.makedirs(dest_dir, exist_ok=True)
        libs = [f for f in flags if f.startswith(("-l", "-L"))] + ["-lm"]
        cc.link_executable(
            objects + core_objects, "lobfast-collect", output_dir=dest_dir, extra_postargs=link_args + libs
        )


setup(ext_modules=[core], cmdclass={"build_ext": build_ext_and_collector})
