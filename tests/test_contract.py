"""The plugin contract, checked over every registered name (built-ins and installed plugins)
with unpaired.testing: the same checks plugin authors run on their own plugins."""
import pytest

import unpaired
from unpaired import testing

REG = unpaired.get_registry()
SMALL = {  # params that keep each built-in small; other plugins run with their defaults
    "resnet": {"ngf": 8, "n_blocks": 2},
    "patchgan": {"ndf": 8, "n_layers": 2},
    "multiscale_patchgan": {"ndf": 8, "n_layers": 2},
    "unet": {"ngf": 8, "num_downs": 2},  # examples/unpaired-unet when installed (2 down-steps: any multiple of 4)
}
VARIANTS = {  # options of the built-ins that change the architecture, checked too
    "generator": [("resnet", {"upsample": "resize_conv"}),
                  ("resnet", {"upsample": "resize_conv", "upsample_mode": "bilinear", "norm": "batch"})],
    "discriminator": [("patchgan", {"spectral_norm": True, "norm": "none"}),
                      ("multiscale_patchgan", {"num_scales": 3}),
                      ("multiscale_patchgan", {"num_scales": 2, "spectral_norm": True, "norm": "none"})],
    "loss": [("wgan", {"gp_weight": 0.0})],
}


def _cases(kind):
    return [(name, {}) for name in REG.names(kind)] + VARIANTS.get(kind, [])


def _ids(kind):
    return [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in _cases(kind)]


@pytest.mark.parametrize("name,params", _cases("generator"), ids=_ids("generator"))
def test_generator_contract(name, params):
    testing.check_generator(name, **{**SMALL.get(name, {}), **params})


@pytest.mark.parametrize("name,params", _cases("discriminator"), ids=_ids("discriminator"))
def test_discriminator_contract(name, params):
    testing.check_discriminator(name, **{**SMALL.get(name, {}), **params})


@pytest.mark.parametrize("name,params", _cases("loss"), ids=_ids("loss"))
def test_loss_contract(name, params):
    testing.check_loss(name, **params)


DATASET_PARAMS = {
    "image_folder": lambda root: {"root": str(root), "load_size": 36, "crop_size": 32},
    "synthetic": lambda root: {"size": 32, "n": 8},
}


@pytest.mark.parametrize("name", REG.names("dataset"))
def test_dataset_contract(name, image_root):
    params = DATASET_PARAMS[name](image_root) if name in DATASET_PARAMS else {}
    testing.check_dataset(name, **params)


def test_every_builtin_is_registered_by_a_builtin_plugin():
    for kind, name in [("generator", "resnet"), ("discriminator", "patchgan"),
                       ("discriminator", "multiscale_patchgan"), ("loss", "bce"), ("loss", "lsgan"),
                       ("loss", "hinge"), ("loss", "wgan"), ("loss", "l1"), ("dataset", "image_folder"),
                       ("objective", "cyclegan"), ("objective", "cut"), ("objective", "fastcut")]:
        assert REG.entry(kind, name).plugin.source == "builtin"


@pytest.mark.parametrize("name", REG.names("feature_extractor"))
def test_feature_extractor_contract(name):
    # tests never download; inception's 299-px forward is slow on CPU: one size
    params = {"load_weights": False, "sizes": [(48, 40)]} if name == "inception" else {}
    testing.check_feature_extractor(name, **params)


@pytest.mark.parametrize("name", REG.names("objective"))
def test_objective_contract(name):
    # small resnet / patchgan networks on a 32-px batch of 2: groups, phases, one step, state
    terms = testing.check_objective(name)
    assert "g_total" in terms


@pytest.mark.parametrize("name", REG.names("objective"))
def test_objective_contract_with_another_generator(name):
    # any registered architecture works with any objective: resize-conv upsampling, batch norm
    testing.check_objective(name, generator=("resnet", {"ngf": 4, "n_blocks": 5, "upsample": "resize_conv",
                                                         "norm": "batch"}))
