"""Source rules of the C code that a compiler does not check."""

from __future__ import annotations

import re
from pathlib import Path

CSRC = Path(__file__).resolve().parent.parent / "csrc"


def test_core_and_collector_never_include_python():
    for f in sorted((CSRC / "core").rglob("*.[ch]")) + sorted((CSRC / "collector").glob("*.[ch]")):
        text = f.read_text()
        includes = re.findall(r"^\s*#\s*include\s*[<\"]([^>\"]+)", text, re.M)
        assert not [i for i in includes if i == "Python.h" or i.startswith("numpy/")], f"{f.name} must stay pure C"
        assert not re.search(r"\bPy[A-Z_]\w*\(", text), f"{f.name} calls the Python C API"


def test_no_python_calls_without_the_gil():
    regions = 0
    for f in sorted((CSRC / "py").glob("*.c")):
        text = f.read_text()
        released = r"Py_BEGIN_ALLOW_THREADS(.*?)Py_END_ALLOW_THREADS|lobpy_nogil_begin\(.*?\);(.*?)lobpy_nogil_end\("
        for body in ("".join(m) for m in re.findall(released, text, re.S)):
            regions += 1
            calls = re.findall(r"\b(Py\w+|_Py\w+|PyArray_\w+)\s*\(", body)
            assert not calls, f"{f.name}: Python C-API calls while the GIL is released: {calls}"
    assert regions >= 1


def test_core_functions_are_prefixed():
    """Declarations start at column 0 (bodies are indented); their names carry lob_."""
    for f in sorted((CSRC / "core").rglob("*.h")):
        for line in f.read_text().splitlines():
            m = re.match(r"^(?![#/}{ *])[\w \*]*?\b(\w+)\(", line)
            if m and not line.startswith(("typedef", "extern")):
                assert m.group(1).startswith("lob_"), f"{f.name}: public function {m.group(1)} lacks the lob_ prefix"
