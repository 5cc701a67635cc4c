"""The plugin contract, checked over every registered name (built-ins and installed plugins)."""
import pytest
import torch

import unpaired

REG = unpaired.get_registry()
SMALL = {  # params that keep each built-in small; other plugins run with their defaults
    "resnet": {"ngf": 8, "n_blocks": 2},
    "patchgan": {"ndf": 8, "n_layers": 2},
}


@pytest.mark.parametrize("name", REG.names("generator"))
@pytest.mark.parametrize("cin,cout", [(3, 3), (1, 3), (3, 1)])
def test_generator_contract(name, cin, cout):
    torch.manual_seed(0)
    g = REG.create("generator", name, in_channels=cin, out_channels=cout, **SMALL.get(name, {}))
    assert isinstance(g, torch.nn.Module)
    for h, w in [(32, 32), (32, 48)]:
        x = torch.randn(2, cin, h, w, requires_grad=True)
        y = g(x)
        assert y.shape == (2, cout, h, w)
        assert torch.isfinite(y).all()
        assert y.min() >= -1 and y.max() <= 1
    y.mean().backward()
    grads = [p.grad for p in g.parameters() if p.requires_grad]
    assert grads and all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", REG.names("discriminator"))
@pytest.mark.parametrize("cin", [3, 1])
def test_discriminator_contract(name, cin):
    torch.manual_seed(0)
    d = REG.create("discriminator", name, in_channels=cin, **SMALL.get(name, {}))
    x = torch.randn(2, cin, 64, 64, requires_grad=True)
    out = d(x)
    assert out.shape[0] == 2 and out.shape[1] == 1 and out.dim() in (2, 4)
    assert torch.isfinite(out).all()
    assert (out < 0).any() and (out > 0).any(), "raw logits, not probabilities"
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", REG.names("loss"))
def test_loss_contract(name):
    loss = REG.create("loss", name)
    adversarial = hasattr(loss, "generator_loss") and hasattr(loss, "discriminator_loss")
    if adversarial:
        real = torch.randn(2, 1, 6, 6, requires_grad=True)
        fake = torch.randn(2, 1, 6, 6, requires_grad=True)
        g = loss.generator_loss(fake)
        d = loss.discriminator_loss(real, fake)
        for value in (g, d):
            assert value.dim() == 0 and torch.isfinite(value)
        (g + d).backward()
        assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0
        # the generator is rewarded for fakes the discriminator calls real
        assert loss.generator_loss(torch.full((1, 1), 5.0)) < loss.generator_loss(torch.full((1, 1), -5.0))
        good_d = loss.discriminator_loss(torch.full((1, 1), 5.0), torch.full((1, 1), -5.0))
        bad_d = loss.discriminator_loss(torch.full((1, 1), -5.0), torch.full((1, 1), 5.0))
        assert good_d < bad_d
    else:
        assert callable(loss)
        out = torch.randn(2, 3, 8, 8, requires_grad=True)
        target = torch.randn(2, 3, 8, 8)
        value = loss(out, target)
        assert value.dim() == 0 and value > 0
        assert loss(target, target) == 0
        value.backward()
        assert out.grad.abs().sum() > 0


DATASET_PARAMS = {
    "image_folder": lambda root: {"root": str(root), "load_size": 36, "crop_size": 32},
    "synthetic": lambda root: {"size": 32, "n": 8},
}


@pytest.mark.parametrize("name", REG.names("dataset"))
def test_dataset_contract(name, image_root):
    params = DATASET_PARAMS[name](image_root) if name in DATASET_PARAMS else {}
    ds = REG.create("dataset", name, **params)
    assert len(ds) > 0
    item = ds[0]
    for domain in ("A", "B"):
        t = item[domain]
        assert t.dim() == 3 and t.dtype == torch.float32
        assert t.min() >= -1 and t.max() <= 1
        assert t.shape[1] % 4 == 0 and t.shape[2] % 4 == 0


def test_every_builtin_is_registered_by_a_builtin_plugin():
    for kind, name in [("generator", "resnet"), ("discriminator", "patchgan"), ("loss", "bce"),
                       ("loss", "lsgan"), ("loss", "l1"), ("dataset", "image_folder")]:
        assert REG.entry(kind, name).plugin.source == "builtin"


@pytest.mark.parametrize("name", REG.names("feature_extractor"))
def test_feature_extractor_contract(name):
    params = {"load_weights": False} if name == "inception" else {}  # tests never download
    net = REG.create("feature_extractor", name, **params)
    x = torch.rand(2, 3, 48, 40) * 2 - 1
    with torch.no_grad():
        f = net(x)
    assert f.shape == (2, net.dim) and torch.isfinite(f).all()
