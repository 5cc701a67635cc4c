"""unpaired-unet's tests: unpaired's contract checks, the U-Net's own properties, and
discovery through the installed entry point. Run after `pip install ./examples/unpaired-unet`."""
import pytest
import torch
from torch import nn

import unpaired
from unpaired import UnpairedError
from unpaired.testing import check_generator, check_loss

from unpaired_unet.losses import unet_hinge
from unpaired_unet.unet import unet

SMALL = {"ngf": 8, "num_downs": 3}
SIZES = [(32, 32), (32, 64), (40, 24)]  # multiples of 2**3


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_unet_meets_the_generator_contract(norm):
    check_generator(unet, sizes=SIZES, norm=norm, **SMALL)


def test_unet_as_registered_meets_the_contract():
    check_generator("unet", sizes=SIZES, dropout=0.5, **SMALL)  # params checked as a recipe's are
    check_generator("unet", ngf=4, num_downs=2)  # 2 down-steps: any multiple of 4, as the contract asks


def test_unet_layout():
    g = unet(3, 3)  # the 256-px defaults
    downs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    ups = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in downs] == [64, 128, 256, 512, 512, 512, 512, 512]
    # every up-step but the innermost takes the skip too: twice the channels
    assert [u.in_channels for u in ups] == [512, 1024, 1024, 1024, 1024, 512, 256, 128]
    assert [u.out_channels for u in ups] == [512, 512, 512, 512, 256, 128, 64, 3]
    assert g(torch.zeros(1, 3, 256, 256)).shape == (1, 3, 256, 256)
    assert isinstance(list(g.modules())[-1], nn.Tanh)
    assert sum(isinstance(m, nn.Dropout) for m in unet(3, 3, dropout=0.5).modules()) == 3


def test_skip_connections_carry_fine_detail():
    # a one-pixel change shows most at its own place: the outermost skip carries it there,
    # while the path through the bottleneck spreads it over the whole image
    torch.manual_seed(0)
    g = unet(1, 1, ngf=4, num_downs=4, norm="none").eval()
    x = torch.zeros(1, 1, 32, 32)
    y = x.clone()
    y[0, 0, 10, 10] = 1.0
    with torch.no_grad():
        diff = (g(y) - g(x)).abs()[0, 0]
    assert diff[9:12, 9:12].max() > 10 * diff[20:, 20:].max()


def test_unet_size_errors_name_the_param():
    g = unet(3, 3, ngf=4, num_downs=6)
    with pytest.raises(UnpairedError, match="num_downs=6.*multiples of 64"):
        g(torch.zeros(1, 3, 32, 32))
    with pytest.raises(UnpairedError, match="generator.params.num_downs"):
        unet(3, 3, num_downs=0)
    with pytest.raises(UnpairedError, match="generator.params.norm"):
        unet(3, 3, norm="group")


def test_unet_hinge_meets_the_loss_contract():
    check_loss(unet_hinge)
    check_loss("unet_hinge", margin=2.0)


def test_unet_hinge_values():
    loss = unet_hinge(margin=1.0)
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-3.0], [0.5]])
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0.5 + 0.75))
    assert loss.generator_loss(fake).item() == pytest.approx(1.25)
    with pytest.raises(UnpairedError, match="margin"):
        unet_hinge(margin=0)


def test_found_through_the_installed_entry_point():
    registry = unpaired.get_registry()
    for kind, name in (("generator", "unet"), ("loss", "unet_hinge")):
        plugin = registry.entry(kind, name).plugin
        assert plugin.source == "entry point"
        assert (plugin.name, plugin.dist, plugin.version) == ("unpaired_unet", "unpaired-unet", "0.1.0")
        assert plugin.location == "unpaired_unet.plugin"
        assert not plugin.error
    assert registry.entry("generator", "unet").factory is unet


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_unet_exports_with_dynamic_sizes(tmp_path, fmt):
    """`unpaired export` works for the U-Net: the export matches it at three sizes."""
    if fmt == "onnx":
        for module in ("onnx", "onnxruntime", "onnxscript"):
            pytest.importorskip(module, reason='the export extra is absent: pip install "unpaired[export]"')
    from unpaired.inference.export import export_onnx, export_pt2, verify

    torch.manual_seed(0)
    g = unet(3, 3, ngf=4, num_downs=3).eval()
    multiple = getattr(g, "size_multiple", 8)
    write = export_onnx if fmt == "onnx" else export_pt2
    path = write(g, 3, tmp_path / f"g.{fmt}", {}, multiple, name="unet")
    check = verify(g, path, fmt, 3, multiple)
    assert check.ok, check
