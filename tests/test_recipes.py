"""Every shipped recipe loads, with and without --quick, and names plugins and params that exist."""
from pathlib import Path

import pytest

import unpaired
from unpaired.config import load_recipe
from unpaired.objective import resolve_losses

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_names_existing_plugins_and_params(path, quick):
    cfg = load_recipe(path, quick=quick)
    reg = unpaired.get_registry()
    resolve_losses(cfg, reg)
    for kind, key in (("objective", "objective"), ("generator", "generator"), ("discriminator", "discriminator")):
        reg.check_params(kind, cfg[key].name, dict(cfg[key].params), key=key)
    reg.check_params("dataset", cfg.data.name, dict(cfg.data.params), key="data")
    for role, choice in cfg.losses.items():
        reg.check_params("loss", choice.name, dict(choice.params), key=f"losses.{role}")


def test_the_cut_recipes_are_the_papers_settings():
    for name in ("forest_abstract_cut", "horse2zebra_cut"):
        cfg = load_recipe(Path(RECIPES[0].parent, f"{name}.yaml"))
        assert cfg.objective.name == "cut" and cfg.losses.adversarial.name == "lsgan"
        assert (cfg.train.epochs, cfg.train.decay_epochs, cfg.train.init, cfg.train.lr) == (200, 200, "xavier", 2e-4)
        # one flag swaps to FastCUT with its own defaults (no recipe params pin CUT's)
        assert not cfg.objective.params
