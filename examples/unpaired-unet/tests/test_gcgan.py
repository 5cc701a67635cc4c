"""The package's own objective, gcgan: the contract, the geometry term by hand, a short
training run whose checkpoint `unpaired translate` uses, and its errors."""
import pytest
import torch
from PIL import Image
from torch import nn

from unpaired import UnpairedError
from unpaired.cli import main
from unpaired.testing import check_objective
from unpaired.engine.trainer import Trainer, train

from unpaired_unet.gcgan import TRANSFORMS, GcGAN

UNET = ("unet", {"ngf": 4, "num_downs": 3})


def test_gcgan_meets_the_objective_contract():
    terms = check_objective("gcgan", generator=("resnet", {"ngf": 4, "n_blocks": 1}))  # rot, one G, identity on
    assert set(terms) == {"g_adv", "g_adv_gc", "gc", "idt", "idt_gc", "g_total", "d", "d_gc"}
    # a second generator for the transformed domain, the flip, no identity, a non-square image
    terms = check_objective(GcGAN, generator=UNET, size=(32, 48), losses={"identity": {"weight": 0}},
                            transform="vflip", share_generator=False)
    assert "idt" not in terms and "gc" in terms


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transforms_are_undone_by_their_inverse(name):
    f, f_inv = TRANSFORMS[name]
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    assert torch.equal(f_inv(f(x)), x) and not torch.equal(f(x), x)
    if name == "rot":  # 90 degrees clockwise: the bottom-left pixel goes to the top-left
        assert f(x).shape == (2, 3, 6, 4) and torch.equal(f(x)[..., 0, 0], x[..., -1, 0])


def model_and_terms(tiny_recipe, *overrides):
    m = Trainer(tiny_recipe("objective.name=gcgan", *overrides)).model
    torch.manual_seed(1)
    a, b = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    return m, a, b, m.train_step(m.phases, a, b, lambda phase, loss: None)  # no update: weights stay


def test_geometry_term_by_hand(tiny_recipe):
    m, a, b, terms = model_and_terms(tiny_recipe, "losses.geometry.weight=3.0")
    f, f_inv = TRANSFORMS["rot"]
    with torch.no_grad():
        fake_b, fake_gb = m.g(a), m.g(f(a))
    # both L1 terms compare the same pixels (f only moves them): 2 x mean |G(a) - f^-1(G(f(a)))|
    expected = 3.0 * 2 * (fake_b - f_inv(fake_gb)).abs().mean()
    assert terms["gc"].item() == pytest.approx(expected.item(), rel=1e-5) and expected > 0
    assert terms["idt"].item() == pytest.approx(5.0 * (m.g(b) - b).abs().mean().item(), rel=1e-5)
    assert terms["idt_gc"].item() == pytest.approx(5.0 * (m.g(f(b)) - f(b)).abs().mean().item(), rel=1e-5)
    # a per-pixel generator commutes with any rotation: no geometry term
    m.gen.g = m.gen.g_gc = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Tanh())
    assert m.train_step(m.phases, a, b, lambda phase, loss: None)["gc"].item() < 1e-6


def test_gcgan_trains_and_translate_uses_its_checkpoint(tiny_recipe, tmp_path, image_root, capsys):
    # the example recipe, one flag swapped: its losses.cycle is unused (one warning), the hinge loss stays
    result = train(tiny_recipe("objective.name=gcgan", "objective.params={transform: rot}",
                               "generator.params={ngf: 4, num_downs: 4}"))
    assert result.step == 2
    run = tmp_path / "run"
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    assert (state["format"], state["objective"]) == (2, "gcgan")
    assert state["translators"] == {"a2b": {"net": "g", "in_channels": 3, "out_channels": 3}}
    assert set(state["nets"]) == {"g", "d", "d_gc"}
    assert state["plugins"]["objective"]["name"] == "gcgan"
    assert state["config"]["losses"]["adversarial"]["name"] == "unet_hinge"
    assert (run / "samples" / "step_0000002.png").is_file()
    out = tmp_path / "translated"
    # 48x40 images: sides not multiples of 2**4, so translate pads them (the unet's size_multiple)
    assert main(["translate", str(run), str(image_root / "testA"), "--out", str(out)]) == 0
    written = sorted(out.glob("*.png"))
    assert len(written) == 4 and all(Image.open(p).size == (48, 40) for p in written)
    capsys.readouterr()
    assert main(["translate", str(run), str(image_root / "testB"), "--direction", "b2a"]) == 2
    assert "'gcgan', which is one-sided: it translates a2b only" in capsys.readouterr().err


def test_gcgan_errors_name_the_key(tiny_recipe):
    with pytest.raises(UnpairedError, match=r"objective.params.transform: 'hflip' is not one of rot, vflip"):
        Trainer(tiny_recipe("objective.name=gcgan", "objective.params.transform=hflip"))
    with pytest.raises(UnpairedError, match="losses.geometry.name: loss 'lsgan' is an adversarial loss"):
        Trainer(tiny_recipe("objective.name=gcgan", "losses.geometry.name=lsgan"))
