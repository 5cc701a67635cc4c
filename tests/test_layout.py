"""The package layout: old import paths of moved modules keep working (with a warning that names
the new home), and the folders hold what their names say."""
import importlib
import sys
import warnings

import pytest

from unpaired.moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_import_path_gives_the_moved_module_with_a_warning(old):
    home, removed = MOVED[old]
    new = importlib.import_module(home)
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=home.replace(".", r"\.") + f".*goes in {removed}"):
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


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_the_top_level_shows_the_engine():
    """At most 16 modules directly in unpaired/; the rest in sub-packages a newcomer can name."""
    modules = sorted(p.name for p in (ROOT / "unpaired").glob("*.py"))
    assert len(modules) <= 16, modules
    for package in ("recipe", "engine", "store", "data", "evaluation", "inference", "report", "runtime", "cli"):
        assert (ROOT / "unpaired" / package / "__init__.py").is_file()


def test_every_private_module_is_banned_to_plugins():
    """ruff's banned-api list (pyproject.toml) names every module and sub-package of unpaired
    but the API, so a module added later is private to plugins too."""
    import pkgutil
    import tomllib

    import unpaired

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    banned = set(config["flake8-tidy-imports"]["banned-api"])
    private = {f"unpaired.{m.name}" for m in pkgutil.iter_modules(unpaired.__path__)
               if m.name not in ("api", "plugins", "__main__")}
    assert private == banned
    assert "TID251" in config["select"]


def test_the_api_lists_what_it_holds():
    import unpaired.api as api

    assert api.API_VERSION >= (1, 0)
    assert all(hasattr(api, name) for name in api.__all__)
    public = {n for n in vars(api) if not n.startswith("_")} - {"annotations", "warnings", "DEPRECATED"}
    assert public == set(api.__all__)
