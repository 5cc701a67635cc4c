"""The package layout: old import paths of moved modules keep working (with a warning that names
the new home), and the folders hold what their names say."""
import importlib
import sys
import warnings

import pytest

from unpaired.moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_import_path_gives_the_moved_module_with_a_warning(old):
    new = importlib.import_module(MOVED[old])
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=MOVED[old].replace(".", r"\.")):
        module = importlib.import_module(old)
    assert module is new
    assert sys.modules[old] is new
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert importlib.import_module(old) is new  # once imported, no second warning


def test_from_import_of_a_moved_name_works():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from unpaired.translate import Translator, load_generators  # noqa: F401  (0.1 paths)
        from unpaired.images import load_image  # noqa: F401
    from unpaired.inference.translate import Translator as New

    assert Translator is New


def test_plugins_import_the_seeded_order_from_unpaired_data():
    from unpaired.data import SeededItems
    from unpaired.data.order import SeededItems as Home

    assert SeededItems is Home


def test_a_new_name_is_not_taken_by_the_moved_finder():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("unpaired.no_such_module")


def test_every_sub_package_is_packaged():
    """pyproject.toml lists packages by name: a new sub-package left out of it would be missing
    from every non-editable install (a wheel) while the tests, run from the checkout, pass."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "unpaired").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    assert found | {"unpaired.plugins"} == listed
