"""Build lobfast._core: the pure-C core (csrc/core) plus its binding (csrc/py), and the
collector executable lobfast/lobfast-collect (csrc/collector + csrc/core, libwebsockets).

System libraries come from pkg-config.  Environment switches:
  LOBFAST_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer, -O1, frame pointers
  LOBFAST_DEBUG=1     -O0 -g3, assertions on
  LOBFAST_WERROR=1    warnings are errors
  LOBFAST_COVERAGE=1  gcov instrumentation
"""

import os
import shlex
import subprocess
from glob import glob

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PKG_CONFIG_PACKAGES = {"libzstd": "libzstd-dev", "zlib": "zlib1g-dev", "libwebsockets": "libwebsockets-dev"}
CORE_LIBS = ("libzstd", "zlib")


def pkg_config(*packages):
    """Compiler and linker flags for `packages`, or a SystemExit naming what is missing."""
    missing = []
    for pc, deb in PKG_CONFIG_PACKAGES.items():
        if pc in packages:
            ok = subprocess.run(["pkg-config", "--exists", pc], capture_output=True)
            if ok.returncode != 0:
                missing.append(f"{pc} (Debian: apt-get install {deb})")
    if missing:
        raise SystemExit("lobfast needs these libraries, not found by pkg-config: " + ", ".join(missing))
    out = subprocess.run(
        ["pkg-config", "--cflags", "--libs", *packages], capture_output=True, text=True, check=True
    ).stdout
    return shlex.split(out)


def flag(name):
    return os.environ.get(name, "") not in ("", "0")


try:
    system_flags = pkg_config(*CORE_LIBS)
    collector_flags = pkg_config(*PKG_CONFIG_PACKAGES)
except FileNotFoundError:
    raise SystemExit("lobfast needs pkg-config (Debian: apt-get install pkg-config)") from None

# -fno-math-errno: sqrt/log compile to one instruction (the core never reads errno after math)
compile_args = ["-std=c11", "-fno-math-errno", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
link_args = []
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
    sources=sorted(glob("csrc/core/*.c")) + sorted(glob("csrc/py/*.c")),
    include_dirs=["csrc", numpy.get_include()],
    depends=glob("csrc/**/*.h", recursive=True),
    define_macros=[
        ("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
        # built against NumPy 2, runs on NumPy >= 1.25's ABI
        ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION"),
    ],
    extra_compile_args=compile_args + [f for f in system_flags if not f.startswith(("-l", "-L"))],
    extra_link_args=link_args + [f for f in system_flags if f.startswith(("-l", "-L"))],
)



class build_ext_and_collector(build_ext):
    """build_ext, then the collector: a plain executable next to the extension, linked with
    the core objects the extension was built from (same flags, sanitizers included)."""

    def run(self):
        super().run()
        cc = self.compiler
        cflags = [f for f in compile_args if f != "-fvisibility=hidden"]
        cflags += [f for f in collector_flags if not f.startswith(("-l", "-L"))]
        objects = cc.compile(
            sorted(glob("csrc/collector/*.c")),
            output_dir=os.path.join(self.build_temp, "collector"),
            include_dirs=["csrc"],
            extra_postargs=cflags + ["-D_GNU_SOURCE"],
            depends=core.depends,
        )
        core_sources = sorted(glob("csrc/core/*.c"))
        core_objects = cc.object_filenames(core_sources, output_dir=self.build_temp)
        if not all(os.path.exists(o) for o in core_objects):
            # the extension was up to date but its objects are gone (build/ removed): make them
            core_objects = cc.compile(
                core_sources, output_dir=self.build_temp, include_dirs=["csrc"], extra_postargs=cflags
            )
        objects += core_objects
        dest_dir = "lobfast" if self.inplace else os.path.join(self.build_lib, "lobfast")
        os.makedirs(dest_dir, exist_ok=True)
        libs = [f for f in collector_flags if f.startswith(("-l", "-L"))] + ["-lm"]
        cc.link_executable(objects, "lobfast-collect", output_dir=dest_dir, extra_postargs=link_args + libs)


setup(ext_modules=[core], cmdclass={"build_ext": build_ext_and_collector})
