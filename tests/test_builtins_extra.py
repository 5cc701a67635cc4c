"""The optional built-ins: resnet's resize-conv upsampling, spectral norm, the multi-scale
PatchGAN, hinge and WGAN(-GP) losses, and the TensorBoard logger."""
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import unpaired
from unpaired import UnpairedError
from unpaired import cli

REG = unpaired.get_registry()
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def n_params(m):
    return sum(p.numel() for p in m.parameters())


# --- resnet: upsample ------------------------------------------------------------------------
def test_resnet_default_is_the_reference_deconv():
    g = REG.create("generator", "resnet", in_channels=3, out_channels=3)
    assert n_params(g) == 11_378_179
    assert len([m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]) == 2
    assert not any(isinstance(m, nn.Upsample) for m in g.modules())


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_resnet_resize_conv_replaces_transposed_convolutions(mode):
    g = REG.create("generator", "resnet", in_channels=3, out_channels=3, upsample="resize_conv", upsample_mode=mode)
    assert n_params(g) == 11_378_179  # a 3x3 conv per upsampling, as the 3x3 deconv had
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    ups = [m for m in g.modules() if isinstance(m, nn.Upsample)]
    assert [(u.scale_factor, u.mode) for u in ups] == [(2.0, mode), (2.0, mode)]
    # each resize is followed by padding and a 3x3 conv halving the channels
    layers = list(g.model)
    for u in ups:
        i = layers.index(u)
        conv = layers[i + 2]
        assert isinstance(layers[i + 1], nn.ReflectionPad2d)
        assert conv.kernel_size == (3, 3) and conv.out_channels == conv.in_channels // 2


def test_resize_conv_has_no_checkerboard_on_a_flat_image():
    # a constant input through resize-conv upsampling stays constant away from the borders;
    # stride-2 transposed convs make a periodic pattern (the checkerboard)
    torch.manual_seed(0)
    spreads = {}
    for upsample in ("resize_conv", "deconv"):
        g = REG.create("generator", "resnet", in_channels=1, out_channels=1, ngf=4, n_blocks=0, norm="none",
                       upsample=upsample)
        with torch.no_grad():
            for m in g.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
                    nn.init.zeros_(m.bias)
            y = g(torch.full((1, 1, 64, 64), 0.5))[0, 0, 16:-16, 16:-16]
        spreads[upsample] = (y.max() - y.min()).item()
        if upsample == "deconv":  # two stride-2 deconvs: a pattern that repeats every 4 pixels
            assert torch.allclose(y[4:, 4:], y[:-4, :-4], atol=1e-6)
    assert spreads["resize_conv"] < 1e-6 < 1e-5 < spreads["deconv"]


@pytest.mark.parametrize("key,value", [("upsample", "pixelshuffle"), ("upsample_mode", "bicubic"), ("padding", "wrap")])
def test_resnet_bad_choices_name_the_key(key, value):
    with pytest.raises(UnpairedError, match=f"generator.params.{key}: '{value}'"):
        REG.create("generator", "resnet", in_channels=3, out_channels=3, ngf=4, n_blocks=1, **{key: value})


# --- spectral norm ---------------------------------------------------------------------------
def test_patchgan_spectral_norm_bounds_each_conv():
    torch.manual_seed(0)
    plain = REG.create("discriminator", "patchgan", in_channels=3, ndf=8, n_layers=2, norm="none")
    d = REG.create("discriminator", "patchgan", in_channels=3, ndf=8, n_layers=2, norm="none", spectral_norm=True)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(parametrize.is_parametrized(c, "weight") for c in convs)
    assert n_params(d) == n_params(plain)
    for _ in range(30):  # power iterations run in training forwards
        d(torch.randn(1, 3, 16, 16))
    with torch.no_grad():
        sigmas = [torch.linalg.matrix_norm(c.weight.flatten(1), ord=2).item() for c in convs]
    assert sigmas == pytest.approx([1.0] * 4, abs=0.02)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())


# --- multi-scale PatchGAN ----------------------------------------------------------------------
@pytest.mark.parametrize("scales", [1, 2, 3])
def test_multiscale_joins_each_scale_upsampled_along_the_width(scales):
    torch.manual_seed(0)
    d = REG.create("discriminator", "multiscale_patchgan", in_channels=3, num_scales=scales, ndf=8, n_layers=2)
    single = REG.create("discriminator", "patchgan", in_channels=3, ndf=8, n_layers=2)
    assert len(d.scales) == scales and n_params(d) == scales * n_params(single)
    x = torch.randn(2, 3, 64, 48)
    out = d(x)
    finest = d.scales[0](x)
    h, w = finest.shape[-2:]
    assert out.shape == (2, 1, h, scales * w)
    assert torch.equal(out[..., :w], finest)
    pooled = x
    for k in range(1, scales):
        pooled = F.avg_pool2d(pooled, 3, stride=2, padding=1, count_include_pad=False)
        coarse = d.scales[k](pooled)
        assert coarse.shape[-1] < w  # a coarser map, stretched to the finest map's size
        expected = F.interpolate(coarse, size=(h, w), mode="nearest")
        assert torch.allclose(out[..., k * w:(k + 1) * w], expected)


def test_multiscale_each_scale_weighs_equally_in_the_losses():
    d = REG.create("discriminator", "multiscale_patchgan", in_channels=3, num_scales=2, ndf=8, n_layers=2)
    out = d(torch.randn(1, 3, 64, 64))
    w = out.shape[-1] // 2
    halves = out[..., :w], out[..., w:]
    assert halves[0].numel() == halves[1].numel()
    hinge = REG.create("loss", "hinge")
    whole = hinge.generator_loss(out).item()
    assert whole == pytest.approx(0.5 * sum(hinge.generator_loss(h).item() for h in halves))


def test_multiscale_too_small_images_name_the_params():
    d = REG.create("discriminator", "multiscale_patchgan", in_channels=3, num_scales=3, ndf=8, n_layers=3)
    with pytest.raises(UnpairedError, match="num_scales=3.*n_layers=3"):
        d(torch.randn(1, 3, 64, 64))
    with pytest.raises(UnpairedError, match="discriminator.params.num_scales"):
        REG.create("discriminator", "multiscale_patchgan", in_channels=3, num_scales=0)


# --- hinge and WGAN --------------------------------------------------------------------------
def test_hinge_values():
    loss = REG.create("loss", "hinge")
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-3.0], [0.5]])
    # D: mean(relu(1 - real)) = 0.5, mean(relu(1 + fake)) = 0.75, averaged
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.625)
    assert loss.generator_loss(fake).item() == pytest.approx(1.25)
    assert not hasattr(loss, "penalty")


def test_wgan_values_and_penalty_only_when_weighted():
    loss = REG.create("loss", "wgan")
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-3.0], [0.5]])
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(-1.25 - 1.0)
    assert loss.generator_loss(fake).item() == pytest.approx(1.25)
    assert loss.gp_weight == 10.0 and callable(loss.penalty)
    assert not hasattr(REG.create("loss", "wgan", gp_weight=0), "penalty")
    with pytest.raises(UnpairedError, match="gp_weight"):
        REG.create("loss", "wgan", gp_weight=-1)


class LinearCritic(nn.Module):
    """D(x) = <W, x> per image: its input gradient is W everywhere, of norm ||W||."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x):
        return (x * self.weight).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty_value_and_gradient():
    weight = torch.zeros(3, 4, 4)
    weight[0, 0, 0] = 3.0  # ||W|| = 3, so the penalty is gp_weight * (3 - 1)^2
    critic = LinearCritic(weight)
    loss = REG.create("loss", "wgan", gp_weight=10.0)
    real, fake = torch.rand(2, 3, 4, 4) * 2 - 1, torch.rand(2, 3, 4, 4) * 2 - 1
    value = loss.penalty(critic, real, fake)
    assert value.item() == pytest.approx(40.0, rel=1e-5)
    value.backward()  # d/dW (||W|| - 1)^2 * 10 = 20 (||W|| - 1) W / ||W||
    assert critic.weight.grad[0, 0, 0].item() == pytest.approx(40.0, rel=1e-4)
    assert critic.weight.grad.abs().sum().item() == pytest.approx(40.0, rel=1e-4)


def test_gradient_penalty_is_computed_in_float32_under_autocast():
    torch.manual_seed(0)
    d = REG.create("discriminator", "patchgan", in_channels=3, ndf=8, n_layers=2, norm="none")
    loss = REG.create("loss", "wgan")
    real, fake = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    torch.manual_seed(1)
    reference = loss.penalty(d, real, fake)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert d(real).dtype == torch.bfloat16  # autocast is on for the network itself
        value = loss.penalty(d, real.bfloat16(), fake.bfloat16())
    assert value.dtype == torch.float32
    # the same up to the inputs' bf16 rounding, far closer than a bf16 computation would be
    assert value.item() == pytest.approx(reference.item(), rel=0.02)


def test_each_discriminator_loss_gets_the_penalty_through_judge(tiny_recipe):
    from unpaired.engine.trainer import Trainer

    def trainer(*loss):
        return Trainer(tiny_recipe("discriminator.name=multiscale_patchgan",
                                   "discriminator.params={ndf: 4, n_layers: 2, norm: none, spectral_norm: true}",
                                   "train.precision=fp32", *loss, out=f"run{len(loss)}"))

    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    t = trainer("losses.adversarial.name=wgan")
    model = t.objective
    _, _, fake_a, fake_b = model.generator_loss(a, b)
    total, terms = model.discriminator_loss(a, b, fake_a, fake_b)
    assert set(terms) == {"d_a", "d_b"} and len(model.adversarial.penalties) == 2  # one per discriminator
    assert all(float(p) > 0 for p in model.adversarial.penalties)
    total.backward()
    assert all(p.grad is not None for p in model.d_a.parameters())
    model.adversarial.penalties.clear()
    logged = t.train_step(a, b)
    assert float(logged["penalty"]) > 0 and "penalty" not in trainer(
        "losses.adversarial.name=wgan", "losses.adversarial.params={gp_weight: 0}").train_step(a, b)


@pytest.mark.slow
def test_short_run_with_the_new_options(tiny_recipe, tmp_path):
    from unpaired.engine.trainer import train

    cfg = tiny_recipe(
        "generator.params={ngf: 4, n_blocks: 1, upsample: resize_conv}",
        "discriminator.name=multiscale_patchgan",
        "discriminator.params={ndf: 4, n_layers: 2, norm: none, spectral_norm: true}",
        "losses.adversarial.name=wgan", "train.max_steps=2",
    )
    result = train(cfg)
    assert result.step == 2
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["plugins"]["discriminator"]["name"] == "multiscale_patchgan"
    assert state["plugins"]["loss.adversarial"]["name"] == "wgan"


def test_plugins_verbose_lists_the_new_params(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert cli.main(["plugins", "-v"]) == 0
    out = capsys.readouterr().out
    assert "upsample='deconv'" in out and "upsample_mode='nearest'" in out
    assert "multiscale_patchgan(num_scales=2, ndf=64, n_layers=3, norm='instance', spectral_norm=False, conditioning=())" in out
    assert "wgan(gp_weight=10.0, r1_gamma=0.0, r1_every=1)" in out and "loss hinge(r1_gamma=0.0, r1_every=1)" in out


# --- TensorBoard -----------------------------------------------------------------------------
def _fake_run(tmp_path, start_step=0):
    return types.SimpleNamespace(config={"name": "tb_test", "train": {"lr": 2e-4}}, out_dir=tmp_path / "run",
                                 start_step=start_step, total_steps=10, device=torch.device("cpu"), model=None,
                                 state={})


def test_tensorboard_logger_writes_scalars_and_samples(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from unpaired.plugins import tensorboard as tb

    run = _fake_run(tmp_path)
    tb.on_train_start(run=run)
    for step in (1, 2, 3):
        tb.on_log(run=run, step=step, metrics={"g_total": float(step), "d_a": 0.5 * step, "lr": 2e-4})
    tb.on_sample(run=run, step=3, images={"grid": torch.rand(3, 20, 30), "a2b": (), "b2a": ()})
    tb.on_checkpoint(run=run, step=3, path=tmp_path / "run" / "checkpoints" / "latest.pt")
    tb.on_train_end(run=run, step=3, interrupted="")
    assert tb.KEY not in run.state  # closed and forgotten

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"g_total", "d_a", "lr"} <= set(tags["scalars"])
    assert [(e.step, e.value) for e in events.Scalars("g_total")] == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert [e.value for e in events.Scalars("d_a")] == pytest.approx([0.5, 1.0, 1.5])
    image = events.Images("samples")
    assert [(i.step, i.width, i.height) for i in image] == [(3, 30, 20)]
    assert "recipe/text_summary" in tags["tensors"]


def _fresh_copy(name):
    """plugins/tensorboard.py imported anew (the built-in copy may already be registered)."""
    spec = importlib.util.spec_from_file_location(name, PLUGINS / "tensorboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tensorboard_hooks_match_the_event_specs():
    pytest.importorskip("tensorboard")
    module = _fresh_copy("unpaired_tb_copy")
    assert {n for n in dir(module) if n.startswith("on_")} == {
        "on_train_start", "on_log", "on_sample", "on_checkpoint", "on_train_end"}
    name = unpaired.register_plugin(module, name="tb-copy")  # pluggy checks each hook's arguments
    unpaired.unregister_plugin(name)


def test_tensorboard_module_does_nothing_without_tensorboard(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    module = _fresh_copy("unpaired_tb_without")
    assert module.AVAILABLE is False
    assert not [n for n in dir(module) if n.startswith("on_")]
    name = unpaired.register_plugin(module, name="tb-without")  # a valid plugin with no hooks
    try:
        assert unpaired.get_registry().create("loss", "l1") is not None
    finally:
        unpaired.unregister_plugin(name)
