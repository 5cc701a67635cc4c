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
