import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "forest_abstract.yaml"

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture
def image_root(tmp_path):
    from helpers import make_image_root

    return make_image_root(tmp_path / "data")


@pytest.fixture
def tiny_recipe(image_root, tmp_path):
    """A function: overrides -> resolved recipe of tiny nets on tiny images."""
    from helpers import tiny_recipe

    def make(*overrides, out="run"):
        return tiny_recipe(image_root, tmp_path / out, *overrides)

    return make


@pytest.fixture
def with_plugin():
    """A function: (plugin object, name) -> registers it for this test only (unregistered after)."""
    import unpaired

    names = []

    def register(plugin, name):
        names.append(unpaired.register_plugin(plugin, name=name))
        return names[-1]

    yield register
    for name in names:
        unpaired.unregister_plugin(name)


@pytest.fixture(scope="session")
def kept_run(tmp_path_factory):
    """A finished tiny CycleGAN run (4 steps, fp32) that kept checkpoints/step_2.pt and step_4.pt
    and scored KID with the offline extractor at steps 2 and 4. Shared: tests only read it
    (``unpaired report`` rewrites its report.html, as the run itself did)."""
    from helpers import make_image_root, tiny_recipe
    from unpaired.engine.trainer import train

    base = tmp_path_factory.mktemp("kept")
    root = make_image_root(base / "data")
    train(tiny_recipe(root, base / "run", "train.keep_every=2", "train.precision=fp32", "eval.every=2",
                      "eval.extractor=tiny"))
    return base / "run"


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A finished tiny CycleGAN run (2 steps, fp32, a checkpoint at step 2). Shared: read it,
    or take a :func:`run_copy` to change it."""
    from helpers import make_image_root, tiny_recipe
    from unpaired.engine.trainer import train

    base = tmp_path_factory.mktemp("finished")
    train(tiny_recipe(make_image_root(base / "data"), base / "run", "train.max_steps=2", "train.checkpoint_every=2",
                      "train.precision=fp32"))
    return base / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A copy of :func:`finished_run` in tmp_path/run, this test's to change."""
    import shutil

    shutil.copytree(finished_run, tmp_path / "run")
    return tmp_path / "run"
