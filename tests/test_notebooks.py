"""The notebooks are stored without outputs and, executed under a Jupyter kernel (as a user
runs them), show their figures and readable tables.

A cell that draws is tagged ``figure`` in its metadata; executed, it must show exactly one
PNG image (none is a figure that never rendered, two a figure drawn twice). No output may be
a figure's bare text (``<Figure size 1000x500 with 2 Axes>``) without its image.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import lobfast

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
FIGURE_TAG = "figure"
# lobfast's figure functions (plots.book_heatmap, evaluate.plot_history, sim.plot_facts...),
# pyplot and DataFrame/QualityReport .plot()
DRAWS = re.compile(r"\b(plots\.\w+|plot_\w+|plt\.\w+|\w+\.plot)\(")
FIGURE_TEXT = re.compile(r"^<(matplotlib\.figure\.)?Figure size [\d.]+x[\d.]+ with \d+ Axes>$")


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _tagged(cell: dict) -> bool:
    return FIGURE_TAG in cell.get("metadata", {}).get("tags", [])


def _execute(nb, cwd: Path):
    """Run ``nb`` (a NotebookNode) in a fresh python3 kernel that imports the lobfast under test."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    root = str(Path(lobfast.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.pop("MPLBACKEND", None)  # the kernel picks its own (inline), as under Jupyter
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return nb


@functools.cache
def _executed(path: Path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    check = nbformat.v4.new_code_cell("import lobfast; print(lobfast.__file__)")
    nb.cells.insert(0, check)
    _execute(nb, path.parent)
    # the kernel ran the package under test, not another installed copy
    assert Path(check.outputs[0]["text"].strip()).resolve() == Path(lobfast.__file__).resolve()
    return nb


def _images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell["outputs"])


def _bare_figures(cell) -> list[str]:
    """Outputs that are a figure's text without its image."""
    bare = []
    for o in cell["outputs"]:
        data = o.get("data", {})
        text = data.get("text/plain", "")
        if FIGURE_TEXT.match(text.strip()) and "image/png" not in data:
            bare.append(text)
    return bare


def test_the_notebooks_are_there():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_", "06_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_that_draw_are_tagged_figure(path):
    nb = json.loads(path.read_text())
    cells = _code_cells(nb)
    untagged = [_source(c) for c in cells if DRAWS.search(_source(c)) and not _tagged(c)]
    stray = [_source(c) for c in cells if _tagged(c) and not DRAWS.search(_source(c))]
    assert not untagged, f"cells that draw without the {FIGURE_TAG!r} tag: {untagged}"
    assert not stray, f"cells tagged {FIGURE_TAG!r} that draw nothing: {stray}"
    assert any(_tagged(c) for c in cells), f"{path.name} draws no figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_notebook_shows_each_figure_once(path):
    nb = _executed(path)
    for cell in nb.cells[1:]:
        if cell.cell_type != "code":
            continue
        src = _source(cell)
        assert not _bare_figures(cell), f"a figure shown as text only, no image, in:\n{src}"
        if _tagged(cell):
            assert _images(cell) == 1, f"{_images(cell)} images (expected 1) from:\n{src}"


def test_quickstart_shows_flag_names():
    nb = _executed(NOTEBOOKS[0])
    shown = [
        o["data"]["text/plain"]
        for c in nb.cells
        if c.cell_type == "code" and "flags" in _source(c)
        for o in c.outputs
        if "text/plain" in o.get("data", {})
    ]
    assert shown, "the quickstart shows no depth rows with flags"
    assert any("SNAPSHOT|END_OF_MESSAGE" in t for t in shown), shown
    assert not any(re.search(r"\s9\s*$", line) for t in shown for line in t.splitlines()), shown


def _one_cell_per_figure(*sources: str):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return _execute(nb, Path.cwd()).cells


def test_a_returned_figure_shows_once_with_or_without_pyplot():
    """The last expression of a cell, a lobfast figure, renders as one PNG whether or not the
    user imported pyplot (whose inline backend has its own figure display); a figure that is
    only assigned shows nothing, as with any matplotlib Figure."""
    draw = "fig = plots.figure(figsize=(3, 2))\nfig.subplots().plot([1, 3, 2])\n"
    cells = _one_cell_per_figure(
        "from lobfast import plots",
        draw + "fig",
        draw,
        "import matplotlib.pyplot as plt\n" + draw + "fig",
        "plt.plot([1, 2])\n" + draw + "fig",
    )
    assert [_images(c) for c in cells] == [0, 1, 0, 1, 2]  # the last: pyplot's own figure, and lobfast's
    assert not any(_bare_figures(c) for c in cells)


def test_lobfast_figures_have_a_png_display():
    """What IPython shows for lobfast's figures, without a kernel or pyplot: a PNG (and the
    usual text), for the figures of plots, evaluate and sim alike; an empty figure shows no image."""
    formatters = pytest.importorskip("IPython.core.formatters")
    pytest.importorskip("matplotlib")
    from lobfast import evaluate, plots

    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    figures = [
        plots.ofi_vs_returns(x, 0.1 * x + rng.normal(size=200)),
        evaluate.plot_history({"train_loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}),
    ]
    fmt = formatters.DisplayFormatter()
    for fig in figures:
        data, _ = fmt.format(fig)
        assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n", sorted(data)
        assert FIGURE_TEXT.match(data["text/plain"])
    data, _ = fmt.format(plots.figure())
    assert "image/png" not in data


def test_training_shows_a_progress_bar():
    """Training in a notebook takes a while: the cell shows a bar per epoch (tqdm), and no
    warning (without ipywidgets the bar is text)."""
    pytest.importorskip("torch")
    pytest.importorskip("tqdm")
    nb = _executed(next(p for p in NOTEBOOKS if p.name.startswith("03_")))
    trains = [c for c in nb.cells if c.cell_type == "code" and re.search(r"(?<![.\w])fit\(", _source(c))]
    assert trains
    for cell in trains:
        err = "".join(o["text"] for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")
        epochs = int(re.search(r"epochs=(\d+)", _source(cell)).group(1))
        for k in range(1, epochs + 1):
            assert f"epoch {k}/{epochs}" in err, err
        assert re.search(r"\d+/\d+ \[", err), err  # batches done / total
        assert "Warning" not in err, err


def test_walk_forward_notebook_trains_with_progress_and_its_predictor_reproduces_the_study():
    pytest.importorskip("torch")
    pytest.importorskip("tqdm")
    nb = _executed(next(p for p in NOTEBOOKS if p.name.startswith("06_")))
    text = "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "same as the study on the last test block: True" in text
    study = next(c for c in nb.cells if c.cell_type == "code" and "walk_forward_per_symbol" in _source(c))
    err = "".join(o["text"] for o in study.outputs if o.output_type == "stream" and o.name == "stderr")
    assert "epoch 2/2" in err and re.search(r"\d+/\d+ \[", err), err
    # one pooled model over several simulated symbols, cut at the same fold times
    assert re.search(r"PooledWalkForward\(5 symbols, 3 folds, \d+ out-of-sample rows", text), text
    pooled = next(c for c in nb.cells if c.cell_type == "code" and "train.walk_forward(" in _source(c))
    err = "".join(o["text"] for o in pooled.outputs if o.output_type == "stream" and o.name == "stderr")
    assert "epoch 2/2" in err and "Warning" not in err, err


def test_store_notebook_processes_with_a_bar_and_trains_a_pooled_model_over_30_symbols():
    pytest.importorskip("torch")
    pytest.importorskip("tqdm")
    pytest.importorskip("polars")
    nb = _executed(next(p for p in NOTEBOOKS if p.name.startswith("05_")))
    cells = [c for c in nb.cells if c.cell_type == "code"]

    def text(cell) -> str:
        return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs)

    def err(cell) -> str:
        return "".join(o["text"] for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")

    process = next(c for c in cells if "store.process(" in _source(c))
    assert re.search(r"lobfast process: .*\d+/89 \[", err(process)), err(process)  # the bar, 89 partitions
    assert "89 partition(s) written, 0 up to date, 0 failed" in text(process)
    assert "Warning" not in err(process), err(process)
    stats = next(c for c in cells if "panel.stats" in _source(c))
    assert "'holes': 1" in text(stats) and "'holes': 0" in text(stats)  # SIM07USDT's missing day
    cut = next(c for c in cells if "panel.split(" in _source(c))
    assert re.search(r"PanelSplit\(30 symbols; train \d+, val \d+, test \d+ windows", text(cut)), text(cut)
    fit = next(c for c in cells if "train.fit(" in _source(c))
    assert "epoch 2/2" in err(fit) and "Warning" not in err(fit), err(fit)
    table = next(c for c in cells if "evaluate_per_symbol(model" in _source(c))
    assert "ALL" in text(table) and "SIM29USDT" in text(table)
