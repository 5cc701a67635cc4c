"""examples/first_hour.ipynb, the first-hour notebook (train the preview, look at the report,
translate), executed as Jupyter runs it — in a python3 kernel started in examples/ — at tiny
settings (UNPAIRED_NOTEBOOK_TINY=1: 4 steps of tiny networks). It fails when a cell errs or stops
showing what it shows; the committed file carries no outputs and is what
examples/make_first_hour_notebook.py writes."""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import time

import pytest
from PIL import Image

from helpers import REPO

NOTEBOOK = REPO / "examples" / "first_hour.ipynb"
GENERATOR = REPO / "examples" / "make_first_hour_notebook.py"
PHOTO = REPO / "data" / "forest_abstract" / "testA" / "forest_path_001.jpg"
MISSING = [m for m in ("nbformat", "nbclient", "ipykernel") if importlib.util.find_spec(m) is None]
NEEDS_JUPYTER = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed: "
                                   'pip install -e ".[test]" installs them')


def cells(nb):
    return nb["cells"] if isinstance(nb, dict) else nb.cells


def cell(nb, tag):
    found = [c for c in cells(nb) if tag in c.get("metadata", {}).get("tags", [])]
    assert len(found) == 1, f"{len(found)} cells tagged {tag!r}"
    return found[0]


def images(c):
    """The PNG outputs of a cell, decoded."""
    return [Image.open(io.BytesIO(base64.b64decode(out["data"]["image/png"])))
            for out in c.get("outputs", []) if "image/png" in out.get("data", {})]


def text(c):
    """What a cell printed: its streams, and the text of what it displayed (rich's console displays
    its lines in a notebook), without colour codes."""
    parts = [out.get("text", "") if out.get("output_type") == "stream" else out.get("data", {}).get("text/plain", "")
             for out in c.get("outputs", [])]
    return re.sub(r"\x1b\[[0-9;]*m", "", "".join(parts))


def test_the_committed_notebook_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 5
    assert [c["id"] for c in code if c["outputs"] or c["execution_count"] is not None] == []
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.skipif("nbformat" in MISSING, reason='nbformat not installed: pip install -e ".[test]"')
def test_the_notebook_is_what_its_generator_writes():
    spec = importlib.util.spec_from_file_location("make_first_hour_notebook", GENERATOR)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert json.loads(NOTEBOOK.read_text(encoding="utf-8")) == json.loads(generator.text()), \
        "examples/first_hour.ipynb differs from what its generator writes: edit the generator, then " \
        "python examples/make_first_hour_notebook.py"


@pytest.mark.parametrize("start", ["root", "examples"])
def test_the_parameters_cell_finds_the_repository_from_the_root_and_from_examples(start, monkeypatch):
    monkeypatch.delenv("UNPAIRED_NOTEBOOK_TINY", raising=False)
    monkeypatch.chdir(REPO if start == "root" else REPO / "examples")
    scope: dict = {}
    exec("".join(cell(json.loads(NOTEBOOK.read_text()), "parameters")["source"]), scope)
    assert scope["REPO"] == REPO and not scope["TINY"]
    assert scope["RUN"] == REPO / "runs" / "first_hour"  # the real preview's folder (not created here)
    assert scope["PHOTO"].is_file() and scope["PREVIEW_MODEL"].is_file() and scope["RECIPE"].is_file()


def test_the_parameters_cell_says_where_to_open_it_outside_a_clone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = "".join(cell(json.loads(NOTEBOOK.read_text()), "parameters")["source"])
    with pytest.raises(FileNotFoundError, match="clone of the repository"):
        exec(source, {})


@pytest.mark.slow
@NEEDS_JUPYTER
def test_the_notebook_runs_at_tiny_settings(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("UNPAIRED_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's tempfile: the run lands in tmp_path
    # one compute thread: tiny networks gain nothing from two, and two threads on 2 cores shared with
    # other processes took 11-39 s for the whole notebook where one took 9 s
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})  # as Jupyter starts it
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"a cell of {NOTEBOOK.name} failed:\n{exc}")
    print(f"the notebook ran in {time.perf_counter() - start:.1f} s")

    errors = [(c.id, out.get("ename")) for c in nb.cells if c.cell_type == "code"
              for out in c.outputs if out.output_type == "error"]
    assert errors == []
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")  # every code cell ran

    run = [p.parent for p in tmp_path.glob("first_hour_*/run/checkpoints")]
    assert len(run) == 1, "the tiny run is not in the kernel's temporary folder"
    run = run[0]
    assert "done: step 4" in text(cell(nb, "train"))
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {"latest.pt", "step_2.pt", "step_4.pt"}

    look = cell(nb, "figure")
    [figure] = images(look)
    with Image.open(run / "figure.png") as written:
        assert figure.size == written.size  # the file itself, shown 720 px wide
    shown = text(look)
    assert "forest_abstract" in shown and "step 4" in shown and "Trained on: data A" in shown
    assert "sections: Run" in shown and (run / "report.html").as_uri() in shown

    with Image.open(PHOTO) as photo:
        w, h = photo.size
    [row] = images(cell(nb, "translate"))
    assert row.size == (2 * w, h)  # the photo | its translation, at the photo's size
    [row] = images(cell(nb, "preview"))
    assert row.size == (3 * w, h)  # the photo | the preview model's painting | back to a photo
