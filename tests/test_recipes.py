"""Every shipped recipe loads, with and without --quick, and names plugins and params that exist."""
from pathlib import Path

import pytest

import unpaired
from unpaired.recipe.config import load_recipe
from unpaired.engine.assemble import declared_losses, resolve_losses

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_names_existing_plugins_and_params(path, quick):
    cfg = load_recipe(path, quick=quick)
    reg = unpaired.get_registry()
    losses = resolve_losses(cfg, declared_losses(reg.entry("objective", cfg.objective.name).factory), cfg.objective.name)
    for kind, key in (("objective", "objective"), ("generator", "generator"), ("discriminator", "discriminator")):
        reg.check_params(kind, cfg[key].name, dict(cfg[key].params), key=key)
    reg.check_params("dataset", cfg.data.name, dict(cfg.data.params), key="data")
    for role, choice in losses.items():
        reg.check_params("loss", choice["name"], choice["params"], key=f"losses.{role}")
    for i, choice in enumerate(cfg.constraints):
        reg.check_params("constraint", choice.name, dict(choice.params), key=f"constraints.{i}")


def test_the_cut_recipes_are_the_papers_settings():
    for name in ("forest_abstract_cut", "horse2zebra_cut"):
        cfg = load_recipe(Path(RECIPES[0].parent, f"{name}.yaml"))
        assert cfg.objective.name == "cut" and cfg.losses.adversarial.name == "lsgan"
        assert (cfg.train.epochs, cfg.train.decay_epochs, cfg.train.init, cfg.train.lr) == (200, 200, "xavier", 2e-4)
        # one flag swaps to FastCUT with its own defaults (no recipe params pin CUT's)
        assert not cfg.objective.params


def test_every_recipe_error_is_reported_before_data_is_touched(tmp_path):
    from unpaired import UnpairedError
    from unpaired.engine.trainer import Trainer

    cfg = load_recipe(RECIPES[0].parent / "forest_abstract.yaml", [
        f"data.params.root={tmp_path / 'no_such_folder'}", f"out_dir={tmp_path / 'run'}",
        "generator.name=resnett", "discriminator.params.ndff=3", "losses.cycle.name=l2", "objective.params.x=1"])
    with pytest.raises(UnpairedError) as err:
        Trainer(cfg)
    msg = str(err.value)
    assert msg.startswith("the recipe has 6 problems:")
    for part in ("generator.name", "Did you mean 'resnet'", "discriminator.params.ndff", "losses.cycle.name",
                 "objective.params.x: objective 'cyclegan'"):
        assert part in msg, part
    # what the data would refuse is named in the same message (training and held-out folders), after
    # the recipe's own problems: one command shows everything to fix
    problems = err.value.problems
    assert [p for p in problems if "no_such_folder" in p] == problems[4:] and len(problems) == 6, problems


def test_the_unsb_recipe_is_the_papers_settings_and_its_networks_are_conditioned():
    from unpaired.engine.assemble import assemble
    from unpaired.engine.build import check_recipe

    path = RECIPES[0].parent / "horse2zebra_unsb.yaml"
    for quick in (False, True):
        cfg = load_recipe(path, quick=quick)
        assert cfg.objective.name == "unsb" and cfg.losses.adversarial.name == "lsgan"
        assert dict(cfg.objective.params) == {"num_timesteps": 5, "tau": 0.01, "lambda_sb": 1.0, "lambda_nce": 1.0,
                                              "nce_idt": True}
        assert (cfg.train.epochs, cfg.train.decay_epochs, cfg.train.init, cfg.train.lr) == (200, 200, "xavier", 2e-4)
        check_recipe(cfg)  # the conditioned generator and discriminators, at recipe time
    unsb = assemble(cfg, channels=(3, 3)).objective  # the --quick one
    assert unsb.bridge.steps == 5 and unsb.bridge.noise_inputs["z"] == ("N", 5, 128)
    assert unsb.e.model[0].in_channels == 12  # E judges two (X_t, X_t+1) pairs side by side


def test_forest_abstract_augments_its_discriminators_and_null_turns_it_off():
    # measured on its 48 + 48 images (bench/augment_forest.py): DiffAugment is the recipe's
    # default, --quick's too; augment=null is the article's exact setup
    recipe = RECIPES[0].parent / "forest_abstract.yaml"
    for quick in (False, True):
        assert load_recipe(recipe, [], quick=quick).augment.name == "diffaugment"
    assert load_recipe(recipe, ["augment=null"]).augment.name is None
    assert load_recipe(RECIPES[0].parent / "horse2zebra.yaml", []).augment.name is None
