"""Recipes: the schema, overrides, --quick, and errors that name the key."""
import pytest

from unpaired import UnpairedError
from unpaired.recipe.config import load_recipe

from helpers import REPO, RECIPE


def test_forest_abstract_is_the_articles_setup():
    cfg = load_recipe(RECIPE)
    assert cfg.generator.name == "resnet" and cfg.generator.params == {"ngf": 64, "n_blocks": 9}
    assert cfg.discriminator.name == "patchgan" and cfg.discriminator.params.n_layers == 3
    assert cfg.losses.adversarial.name == "bce"
    assert (cfg.losses.cycle.name, cfg.losses.cycle.weight) == ("l1", 10.0)
    assert (cfg.losses.identity.name, cfg.losses.identity.weight) == ("l1", 5.0)
    assert cfg.data.params.load_size == 286 and cfg.data.params.crop_size == 256
    assert cfg.data.batch_size == 1
    assert (cfg.train.epochs, cfg.train.decay_epochs, cfg.train.lr) == (100, 100, 2e-4)
    assert cfg.objective.name == "cyclegan" and cfg.objective.params.pool_size == 50
    assert list(cfg.train.betas) == [0.5, 0.999]
    assert cfg.out_dir == "runs/forest_abstract"


def test_horse2zebra_uses_lsgan():
    cfg = load_recipe(REPO / "recipes" / "horse2zebra.yaml")
    assert cfg.losses.adversarial.name == "lsgan" and cfg.data.params.root == "data/horse2zebra"


def test_quick_scales_down_and_uses_its_own_out_dir():
    cfg = load_recipe(RECIPE, quick=True)
    assert cfg.data.params.crop_size == 64 and cfg.train.max_steps == 1000
    assert cfg.generator.name == "resnet" and cfg.out_dir == "runs/forest_abstract_quick"
    assert cfg.data.params.root == "data/forest_abstract"


def test_overrides_set_values_and_replace_mappings():
    cfg = load_recipe(RECIPE, ["train.epochs=5", "data.params.root=/my/data", "train.lr=1e-4",
                               "generator.name=unet", "generator.params={}", "data.params.flip=false"])
    assert cfg.train.epochs == 5 and cfg.data.params.root == "/my/data" and cfg.train.lr == 1e-4
    assert cfg.generator.name == "unet" and dict(cfg.generator.params) == {}
    assert cfg.data.params.flip is False and cfg.data.params.crop_size == 256
    cfg = load_recipe(RECIPE, ["generator.params={n_blocks: 6}"])
    assert dict(cfg.generator.params) == {"n_blocks": 6}


@pytest.mark.parametrize("override,words", [
    ("trian.epochs=3", ["trian.epochs", "train.epochs"]),
    ("train.epochs=abc", ["train.epochs", "abc"]),
    ("train.precision=fp8", ["train.precision", "fp8"]),
    ("train.lr=-1", ["train.lr"]),
    ("nonsense", ["nonsense", "key=value"]),
])
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(UnpairedError) as err:
        load_recipe(RECIPE, [override])
    assert all(w in str(err.value) for w in words), str(err.value)


def test_recipe_file_errors(tmp_path):
    with pytest.raises(UnpairedError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain: {epocs: 3}\n")
    with pytest.raises(UnpairedError, match="epocs") as err:
        load_recipe(bad)
    assert str(bad) in str(err.value)
    bad.write_text("generator: {name: resnet}\n")
    with pytest.raises(UnpairedError, match="missing value for name"):
        load_recipe(bad)
    bad.write_text("name: x\ntrain: {epochs: many}\n")
    with pytest.raises(UnpairedError, match="train.epochs"):
        load_recipe(bad)
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UnpairedError, match="not valid YAML"):
        load_recipe(bad)


# --- keys that left the engine's schema (0.2): CycleGAN's own params ----------------------------
def test_the_schema_knows_no_objectives_settings(capsys):
    from unpaired.cli import main

    assert main(["run", str(REPO / "recipes" / "forest_abstract_cut.yaml"), "--print-config"]) == 0
    shown = capsys.readouterr().out
    for key in ("pool_size", "fuse_passes", "cycle:", "identity:"):
        assert key not in shown, key


def test_old_keys_move_into_the_objectives_params_with_a_line(tmp_path, caplog):
    import logging

    old = tmp_path / "old.yaml"  # a recipe as 0.1 wrote them: CycleGAN's pool in the engine's train section
    old.write_text("name: old\ngenerator: {name: resnet, params: {ngf: 8, n_blocks: 2}}\n"
                   "train: {epochs: 1, decay_epochs: 0, pool_size: 7}\nquick: {train.fuse_passes: false}\n")
    with caplog.at_level(logging.INFO, logger="unpaired"):
        cfg = load_recipe(old, ["train.fuse_passes=true"])
        quick = load_recipe(old, quick=True)
        cut = load_recipe(old, ["objective.name=cut", "train.pool_size=3"])  # CUT has no pool: ignored, as before
    assert cfg.objective.params == {"pool_size": 7, "fuse_passes": True}
    assert quick.objective.params == {"pool_size": 7, "fuse_passes": False}
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "train.pool_size is objective.params.pool_size since 0.2" in said
    assert "train.fuse_passes is objective.params.fuse_passes since 0.2" in said
    assert "pool_size" not in cut.objective.params and "objective 'cut' has no pool_size" in caplog.text


def test_a_checkpoints_old_keys_move_too():
    from unpaired.recipe.config import from_container

    cfg = from_container({"name": "x", "train": {"pool_size": 3, "fuse_passes": False, "lr": 1e-3}})
    assert cfg.objective.name == "cyclegan" and dict(cfg.objective.params) == {"pool_size": 3, "fuse_passes": False}
    assert cfg.train.lr == 1e-3
    cut = from_container({"name": "x", "objective": {"name": "cut"}, "train": {"pool_size": 50}})
    assert dict(cut.objective.params) == {}


def test_every_problem_of_a_recipe_is_named_at_once(tmp_path, capsys):
    """A misspelt generator and a missing data folder: one command, both named, exit 2."""
    from unpaired.cli import main

    code = main(["run", str(RECIPE), "generator.name=resnett", f"data.params.root={tmp_path / 'nowhere'}",
                 f"out_dir={tmp_path / 'run'}", "--quick"])
    err = capsys.readouterr().err
    assert code == 2 and "problems:" in err, err
    assert "unknown generator 'resnett'" in err and f"no folder {tmp_path / 'nowhere'}" in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()
