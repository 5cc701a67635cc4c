"""The documentation's Python snippets run as written (paths pointed at a tiny run): every block
marked `<!-- test: run -->` in README.md and docs/*.md (tests/test_docs.py finds them), and the
onnxruntime one of docs/translate.md, which imports nothing of unpaired, gives what
`unpaired translate` gives. (The snippets lived in README.md before it pointed to docs/.)"""
import importlib.util

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, make_image_root, tiny_recipe
from test_docs import blocks, runnable_blocks

PAGE = REPO / "docs" / "translate.md"  # where the Translator and onnxruntime snippets live
SNIPPETS = [b.code for b in blocks([PAGE]) if b.lang == "python"]
RUNNABLE = runnable_blocks()
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))


def snippet(marker):
    found = [s for s in SNIPPETS if marker in s]
    assert len(found) == 1, f"{PAGE.name} has {len(found)} python snippets with {marker!r}"
    assert any(b.code == found[0] for b in RUNNABLE), f"the {marker!r} snippet is not marked to run"
    return found[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder laid out as the snippets expect: runs/forest_abstract_quick (a tiny run),
    forest.jpg and lake.jpg (odd sizes, so padding and cropping matter)."""
    from unpaired.engine.trainer import train

    tmp = tmp_path_factory.mktemp("readme")
    root = make_image_root(tmp / "data")
    train(tiny_recipe(root, tmp / "runs" / "forest_abstract_quick", "train.max_steps=2"))
    if HAVE_ONNX:  # the onnxruntime snippet reads RUN/generator_a2b.onnx
        from unpaired.cli import main

        assert main(["export", str(tmp / "runs" / "forest_abstract_quick"), "--format", "onnx"]) == 0
    rng = np.random.default_rng(0)
    for name, size in (("forest.jpg", (61, 47)), ("lake.jpg", (61, 47))):
        low = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
        Image.fromarray(low).resize(size, Image.BICUBIC).save(tmp / name, quality=95)
    return tmp


@pytest.mark.slow
def test_the_translator_snippet_runs(project, monkeypatch):
    monkeypatch.chdir(project)
    (project / "painting.png").unlink(missing_ok=True)
    scope = {}
    exec(snippet("Translator.from_checkpoint"), scope)
    assert Image.open(project / "painting.png").size == (61, 47)
    assert [p.size for p in scope["paintings"]] == [(61, 47), (61, 47)]


@pytest.mark.skipif(not HAVE_ONNX, reason='the export extra is absent: pip install "unpaired[export]"')
def test_the_onnxruntime_snippet_gives_what_translate_gives(project, monkeypatch):
    from unpaired.cli import main

    monkeypatch.chdir(project)
    run = project / "runs" / "forest_abstract_quick"
    assert (run / "generator_a2b.onnx").is_file()  # exported by the fixture
    assert main(["translate", str(run), "forest.jpg", "--out", "translated", "--precision", "fp32",
                 "--no-progress"]) == 0
    (project / "painting.png").unlink(missing_ok=True)
    exec(snippet("onnxruntime"), {})
    ours = np.asarray(Image.open(project / "translated" / "forest.png"), np.int16)
    theirs = np.asarray(Image.open(project / "painting.png"), np.int16)
    assert theirs.shape == ours.shape == (47, 61, 3)
    assert np.abs(theirs - ours).max() <= 1  # the same padding and crop; the resizing snippet was 10/255 off


@pytest.mark.parametrize("block", RUNNABLE, ids=str)
def test_every_snippet_marked_to_run_runs(block, project, monkeypatch):
    if "onnxruntime" in block.code and not HAVE_ONNX:
        pytest.skip('the export extra is absent: pip install "unpaired[export]"')
    monkeypatch.chdir(project)
    exec(compile(block.code, str(block), "exec"), {"__name__": "snippet"})
