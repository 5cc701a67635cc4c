"""Writes examples/first_hour.ipynb, the first-hour notebook: train the preview, look at the
report, translate. Edit the cells here and run ``python examples/make_first_hour_notebook.py``;
the notebook is written without outputs, with fixed cell ids, so its diff shows only what changed.
tests/test_notebook.py executes it (tiny settings) and checks that it is what this script writes.
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK = Path(__file__).resolve().parent / "first_hour.ipynb"

INTRO = """\
# The first hour with `unpaired`

Train the CPU preview of forest photos -> abstract paintings, look at what it made, and translate
a photo with it — the same steps as `unpaired run recipes/forest_abstract.yaml --quick`, from
Python.

1. **Parameters**: where the repository is, where the run goes.
2. **Train** the preview: the recipe's `quick` block (64-px crops, smaller networks, 1,000 steps;
   6-8 min on 2 CPU cores without native bf16, docs/getting-started.md has the measurements).
3. **Look**: the figure of held-out images, and the report (`report.html`).
4. **Translate** a held-out photo with the run, and with the preview model that ships in
   `models/` (a model to try before training).

Set-up: `pip install -e .` in a clone of the repository (README.md), then
`pip install jupyter; jupyter lab examples/first_hour.ipynb`. Run the cells from the top."""

PARAMETERS = """\
import os
import tempfile
from pathlib import Path

# CI executes this notebook with UNPAIRED_NOTEBOOK_TINY=1: tiny networks for 4 steps, to check that
# every cell works (tests/test_notebook.py). Unset, it trains the real preview.
TINY = os.environ.get("UNPAIRED_NOTEBOOK_TINY") == "1"

# The repository's root: the folder holding recipes/forest_abstract.yaml, this folder or one above
# (Jupyter starts the notebook in examples/; nbclient or a script may start it in the root).
REPO = next((folder for folder in (Path.cwd(), *Path.cwd().parents)
             if (folder / "recipes" / "forest_abstract.yaml").is_file()), None)
if REPO is None:
    raise FileNotFoundError(f"no recipes/forest_abstract.yaml in {Path.cwd()} or a folder above it: "
                            "open this notebook in a clone of the repository")
RECIPE = REPO / "recipes" / "forest_abstract.yaml"
PHOTO = REPO / "data" / "forest_abstract" / "testA" / "forest_path_001.jpg"  # held out: never trained on
PREVIEW_MODEL = REPO / "models" / "forest_abstract_preview.pt"  # the preview's generators at step 1,000

# Overrides, on top of the recipe's `quick` block; the recipe's data path is relative to the root.
OVERRIDES = [f"data.params.root={REPO / 'data' / 'forest_abstract'}"]
if TINY:  # a run of seconds in a folder of its own, removed with the temporary folder
    RUN = Path(tempfile.mkdtemp(prefix="first_hour_")) / "run"
    OVERRIDES += [
        "generator.params={ngf: 4, n_blocks: 1, upsample: resize_conv}",
        "discriminator.params={ndf: 4, n_layers: 2}",
        "data.params.load_size=36", "data.params.crop_size=32",
        "train.max_steps=4", "train.log_every=1", "train.sample_every=2",
        "train.checkpoint_every=2", "train.keep_every=2", "train.precision=fp32",
    ]
else:
    RUN = REPO / "runs" / "first_hour"
OVERRIDES.append(f"out_dir={RUN}")
print("the run's folder:", RUN)"""

TRAIN_MD = """\
## Train

`unpaired.cli.main` runs the command `unpaired run recipes/forest_abstract.yaml --quick ...` in
this kernel: the recipe, its `quick` block, then the overrides; a line every 25 steps, then the
files it wrote and the next steps as commands. It returns the command's exit code (0: done; 2: a
user error, named in one message above it). The kernel's *Interrupt* stops it as Ctrl-C does: it
saves a checkpoint first. A folder holds one run: when the run's folder already has one (this
notebook ran before), this cell uses it — delete the folder to train again, or continue an
interrupted run with `--resume` (`unpaired run RUN/config.yaml --resume`)."""

TRAIN = """\
from unpaired.cli import main as unpaired

if (RUN / "checkpoints" / "latest.pt").exists():
    print(f"{RUN} already holds a run: it is used as it is (delete the folder to train again)")
else:
    code = unpaired(["run", str(RECIPE), "--quick", *OVERRIDES])
    if code != 0:
        raise RuntimeError(f"unpaired run ended with exit code {code}: the lines above say why")"""

LOOK_MD = """\
## Look at the result

`figure.png`: held-out images at their own resolution, real | translated | reconstructed, forest
photos -> paintings in the first rows, paintings -> photos below (README.md, "What the preview
looks like", shows and describes what 1,000 steps make; CI's tiny run of 4 steps makes noise).

`report.html` is one self-contained page: the loss curves, the held-out images translated by the
model of each kept step (every 250 steps), the figure and the sample grids. Open it in a browser;
`unpaired report RUN` rebuilds it at any time."""

LOOK = """\
import html
import re

from IPython.display import Image as ShowImage, display

display(ShowImage(filename=str(RUN / "figure.png"), width=720))


def page_text(markup):
    \"\"\"The text of some HTML: a line per heading or paragraph.\"\"\"
    markup = re.sub(r"</(h1|h2|p)>", "\\n", markup)
    return html.unescape(re.sub(r"<[^>]+>", "", markup)).strip()


report = (RUN / "report.html").read_text(encoding="utf-8")
head = re.split(r"<details|</section>", report[report.find("<main>"):], maxsplit=1)[0]
print(page_text(head))  # the run's name, folder and step; the data, device and networks it trained
print("sections:", ", ".join(html.unescape(h) for h in re.findall(r"<h2>([^<]+)</h2>", report)))
print("open in a browser:", (RUN / "report.html").as_uri())"""

TRANSLATE_MD = """\
## Translate a photo

`Translator.from_checkpoint` takes a run's folder (its latest checkpoint; `step=250` for a kept
step) or a checkpoint file, and the direction: `a2b` is photo -> painting. PIL image in, PIL image
out, at the input's size. Below: the held-out photo | the run's painting."""

TRANSLATE = """\
from PIL import Image

from unpaired import Translator


def side_by_side(*images):
    \"\"\"The images in one row, left to right.\"\"\"
    row = Image.new("RGB", (sum(im.width for im in images), max(im.height for im in images)), "white")
    x = 0
    for im in images:
        row.paste(im, (x, 0))
        x += im.width
    return row


to_painting = Translator.from_checkpoint(RUN, direction="a2b")
photo = Image.open(PHOTO).convert("RGB")
painting = to_painting(photo)  # painting.save("painting.png") to keep it
print(f"{PHOTO.name}: {photo.width} x {photo.height} px in, {painting.width} x {painting.height} px out")
display(side_by_side(photo, painting))"""

PREVIEW_MD = """\
## The preview model: a model to try before training

`models/forest_abstract_preview.pt` holds the generators of one run of this preview at step
1,000 (float16, 7.5 MiB; `scripts/make_preview.py` made it). It translates as a run does —
here the same photo, and the painting back to a photo (`b2a`)."""

PREVIEW = """\
preview_a2b = Translator.from_checkpoint(PREVIEW_MODEL, direction="a2b")
preview_b2a = Translator.from_checkpoint(PREVIEW_MODEL, direction="b2a")
preview_painting = preview_a2b(photo)
display(side_by_side(photo, preview_painting, preview_b2a(preview_painting)))"""

NEXT_MD = """\
## Next steps

In a terminal, in the repository's root (`runs/first_hour` is this notebook's run):

```bash
unpaired serve runs/first_hour                                   # a local page: drop images, see them translated
unpaired eval runs/first_hour --extractor tiny                   # KID/FID and the cycle error (offline extractor)
unpaired translate runs/first_hour my_photos/ --out paintings/   # a folder of photos, full resolution
unpaired run runs/first_hour/config.yaml --resume train.max_steps=4000   # train longer
```

`unpaired serve models/forest_abstract_preview.pt` serves the preview model the same way. Your own
images, other objectives (CUT, FastCUT, UNSB) and the full setup: docs/getting-started.md and the
pages it links."""


def notebook():
    cells = [
        new_markdown_cell(INTRO, id="intro"),
        new_code_cell(PARAMETERS, id="parameters", metadata={"tags": ["parameters"]}),
        new_markdown_cell(TRAIN_MD, id="train-md"),
        new_code_cell(TRAIN, id="train", metadata={"tags": ["train"]}),
        new_markdown_cell(LOOK_MD, id="look-md"),
        new_code_cell(LOOK, id="look", metadata={"tags": ["figure"]}),
        new_markdown_cell(TRANSLATE_MD, id="translate-md"),
        new_code_cell(TRANSLATE, id="translate", metadata={"tags": ["translate"]}),
        new_markdown_cell(PREVIEW_MD, id="preview-md"),
        new_code_cell(PREVIEW, id="preview", metadata={"tags": ["preview"]}),
        new_markdown_cell(NEXT_MD, id="next-steps"),
    ]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


def text():
    """The notebook's file contents, as Jupyter writes them (1-space indent, trailing newline)."""
    return nbformat.writes(notebook()) + "\n"


if __name__ == "__main__":
    NOTEBOOK.write_text(text(), encoding="utf-8")
    print(f"wrote {NOTEBOOK}")
