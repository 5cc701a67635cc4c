"""Differentiable augmentation of what the discriminators see (issue 22): the built-ins
(diffaugment, ada) keep the contract and do what their papers say, the engine applies the
recipe's choice to every discriminator input of every objective without the objective's help,
the same draw on request, ADA's p follows the overfitting signal, its state resumes bit for bit,
inference never augments, an outside plugin can register one, bad params exit 2 naming the key."""
import csv
import re

import pytest
import torch
from torch import nn

from unpaired import UnpairedError, hookimpl
from unpaired.engine.augment import Augmentation, attach
from unpaired.loading import get_registry
from unpaired.engine.objective import Adversarial
from unpaired.testing import check_objective
from unpaired.engine.trainer import Trainer, train

FP32 = "train.precision=fp32"


def images(n=4, c=3, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) * 2 - 1


def build(name, **params):
    return get_registry().create("augmentation", name, params, key="augment")


# --------------------------------------------------------------------------- the transforms
def test_diffaugment_colour_shifts_an_image_mean_by_its_brightness_only():
    x = images(64)
    y = build("diffaugment", translation=0.0, cutout=0.0)(x, torch.Generator().manual_seed(1))
    shift = (y.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))).abs()
    # saturation (around each pixel's channel mean) and contrast (around the image mean) keep the
    # mean; brightness moves it by U(-0.5, 0.5)
    assert shift.max() <= 0.5 + 1e-5 and shift.max() > 0.3
    assert not torch.allclose(y - y.mean(dim=(1, 2, 3), keepdim=True), x - x.mean(dim=(1, 2, 3), keepdim=True))


def shifted(x, dy, dx):
    """``x`` (C, H, W) moved by whole pixels, zeros where it moved away."""
    out = torch.zeros_like(x)
    h, w = x.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_diffaugment_translation_and_cutout_are_the_papers():
    x = images(16, h=32, w=40)
    y = build("diffaugment", color=False, cutout=0.0)(x, torch.Generator().manual_seed(2))
    moves = set()
    for xi, yi in zip(x, y):  # each image is one whole-pixel shift of at most 1/8 of the size (4, 5 px)
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-5, 6) if torch.equal(shifted(xi, dy, dx), yi)]
        assert len(found) == 1
        moves.add(found[0])
    assert len(moves) > 8  # drawn per image

    y = build("diffaugment", color=False, translation=0.0)(x, torch.Generator().manual_seed(3))
    erased = y == 0
    assert torch.equal(y[~erased], x[~erased])  # elsewhere untouched
    share = erased.all(dim=1).float().mean(dim=(1, 2))
    assert (share > 0).all() and (share <= 0.25 + 1e-6).all()  # a rectangle of half the size, maybe cut by an edge
    assert share.unique().numel() > 1


@pytest.mark.parametrize("transform,p,candidates", [
    ("xflip", 0.5, lambda x: [x, x.flip(-1)]),
    ("rotate90", 1.0, lambda x: [torch.rot90(x, k, (-2, -1)) for k in range(4)]),  # k = 0 too, as in the paper
])
def test_ada_flips_and_quarter_turns_are_exact(transform, p, candidates):
    x = images(16)
    y = build("ada", p=p, max_p=1.0, transforms=[transform])(x, torch.Generator().manual_seed(4))
    seen = set()
    for xi, yi in zip(x, y):
        match = [i for i, c in enumerate(candidates(xi)) if torch.allclose(c, yi, atol=1e-5)]
        assert match, transform
        seen.add(match[0])
    assert len(seen) > 1


def test_ada_geometry_stays_in_range_and_p_zero_is_no_augmentation():
    x = images(16)
    geometric = build("ada", p=1.0, max_p=1.0, transforms=["xflip", "rotate90", "translation", "scale"])
    y = geometric(x, torch.Generator().manual_seed(5))
    assert y.min() >= x.min() - 1e-6 and y.max() <= x.max() + 1e-6  # bilinear, reflected borders: no new extremes
    assert not torch.equal(y, x)
    assert torch.equal(build("ada", p=0.0)(x, torch.Generator().manual_seed(5)), x)  # bit for bit


@pytest.mark.parametrize("name,params", [("diffaugment", {}), ("ada", {"p": 0.8})])
def test_the_same_draw_is_given_when_asked(name, params):
    from unpaired.engine.phases import Step

    def seam():
        return Augmentation(build(name, **params), name)

    aug, fresh, replay = seam(), seam(), seam()
    real, fake, small = images(4, seed=1), images(4, seed=2), images(2, seed=3)
    step = Step({}, augmentation=aug)
    with step.same_draw():
        r1, f1 = aug.augment(real), aug.augment(fake)
        s1 = aug.augment(small)  # another shape: a draw of its own
    assert torch.equal(r1, fresh.augment(real))  # the first draw from the generator's state
    assert torch.equal(f1, replay.augment(fake))  # the fake got that same draw
    assert torch.equal(s1, fresh.augment(small))  # the next draw
    assert not torch.equal(f1, fresh.augment(fake))  # outside the block each call draws anew
    assert not torch.equal(r1, aug.augment(real))
    with Step({}).same_draw():  # no augmentation: nothing to do
        pass


def test_same_draw_leaves_the_generator_past_the_draws_it_made():
    a, b = Augmentation(build("ada", p=0.8), "ada"), Augmentation(build("ada", p=0.8), "ada")
    x4, x2 = images(4), images(2)
    with a.same_draw():
        a.augment(x4), a.augment(x2), a.augment(x4)  # the third replays the first
    b.augment(x4), b.augment(x2)  # the same new draws, no replay
    assert torch.equal(a.state_dict()["rng"], b.state_dict()["rng"])
    assert torch.equal(a.augment(x4), b.augment(x4))


def test_a_new_shape_after_a_replay_draws_past_every_draw_so_far():
    # shapes S, S2, S (replayed), S3: S3 must not get the numbers S2 got (the generator sits past
    # S2's draw after the replay), and the block leaves it where three fresh draws leave it
    a, b = Augmentation(build("diffaugment"), "d"), Augmentation(build("diffaugment"), "d")
    x4, x2, x3 = images(4, seed=1), images(2, seed=2), images(3, seed=3)
    with a.same_draw():
        a.augment(x4), a.augment(x2), a.augment(x4)
        y3 = a.augment(x3)
    b.augment(x4), b.augment(x2)
    assert torch.equal(y3, b.augment(x3))
    assert torch.equal(a.state_dict()["rng"], b.state_dict()["rng"])


def test_a_generator_state_of_another_device_type_starts_afresh_with_a_line(caplog):
    import logging

    a = Augmentation(build("diffaugment"), "d", seed=3)
    a.load_state_dict({"name": "d", "rng": torch.zeros(16, dtype=torch.uint8), "rng_device": "cuda"})
    with caplog.at_level(logging.INFO, logger="unpaired"):
        y = a.augment(images(2))  # a CUDA generator's state would not fit a CPU generator
    assert torch.equal(y, Augmentation(build("diffaugment"), "d", seed=3).augment(images(2)))
    assert any("of a cuda device" in r.getMessage() for r in caplog.records)
    assert a.state_dict()["rng_device"] == "cpu"


# --------------------------------------------------------------------------- ADA's p
def test_ada_p_follows_the_overfitting_signal_of_a_discriminator():
    torch.manual_seed(0)
    d = get_registry().create("discriminator", "patchgan", in_channels=3, ndf=8, n_layers=2)
    adv = Adversarial(get_registry().create("loss", "bce"), "bce", "losses.adversarial")
    ada = build("ada", interval=2, speed=40)  # p moves by 4 images x 2 steps / 40 = 0.2 per adjustment
    aug = attach(Augmentation(ada, "ada"), [d], [adv])
    opt = torch.optim.Adam(d.parameters(), lr=2e-3)
    real = images(4, seed=0)  # four images to memorise

    def train_d(steps, start, fooled=False):
        """(r_t, p before, p after) of each adjustment while D learns to call ``real`` real (or,
        ``fooled``, to call it fake: D trained on swapped labels, as a D that generated images fool)."""
        moves = []
        for step in range(start + 1, start + steps + 1):
            fake = images(4, seed=1000 + step)
            loss = adv.judge(d, fake, real) if fooled else adv.judge(d, real, fake)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if fooled:  # the judge saw the fakes in the real slot: count D's verdict on the real images
                ada.stats.zero_()
                aug.observer()(d(real).detach())
            before = float(ada.p)
            aug.adapt(step, 4, lambda t: t)
            if step % 2 == 0:
                moves.append((float(ada.rt), before, float(ada.p)))
        return moves

    overfitting = train_d(40, 0)
    fooled = train_d(40, 40, fooled=True)
    for rt, before, after in overfitting + fooled:  # every adjustment goes the way of sign(r_t - 0.6)
        want = min(before + 0.2, 0.8) if rt > 0.6 else max(before - 0.2, 0.0) if rt < 0.6 else before
        assert after == pytest.approx(want, abs=1e-6), (rt, before, after)
    # D memorises the four images (r_t > 0.6): p goes up; augmented, they are harder to tell (p comes
    # back down): the feedback ADA is made of
    assert max(rt for rt, _, _ in overfitting) > 0.9 and max(p for _, _, p in overfitting) >= 0.2
    assert all(rt < 0.6 for rt, _, _ in fooled[-5:]) and fooled[-1][2] == 0.0  # D calls the reals fake: p back to 0
    assert aug.calls > 0


def test_lsgan_overfitting_signal_counts_logits_above_its_boundary():
    reg = get_registry()
    bce = Adversarial(reg.create("loss", "bce"), "bce", "k")
    lsgan = Adversarial(reg.create("loss", "lsgan"), "lsgan", "k")
    assert bce.boundary == 0.0 and lsgan.boundary == 0.5  # lsgan's targets are 0 (fake) and 1 (real)
    ada = build("ada", interval=1)
    aug = attach(Augmentation(ada, "ada"), [], [lsgan])
    lsgan.discriminator_loss(torch.full((2, 1, 3, 3), 0.3), torch.zeros(2, 1, 3, 3))  # undecided-ish: "fake"
    aug.adapt(1, 2, lambda t: t)
    assert float(ada.rt) == -1.0


# --------------------------------------------------------------------------- the engine's seam
class Outside:
    """An augmentation registered by an outside plugin: counts the batches it sees."""

    calls = []

    @hookimpl
    def register_augmentations(self, register):
        def counting(scale=1.0):
            if not scale > 0:
                raise UnpairedError(f"augment.params.scale: {scale!r} must be > 0")

            def augment(images, generator):
                Outside.calls.append(tuple(images.shape))
                return images * scale + 0 * torch.rand(images.shape[0], 1, 1, 1, generator=generator,
                                                         device=images.device)
            return augment

        register("counting", counting, help="identity that counts")


@pytest.mark.slow
@pytest.mark.parametrize("objective,per_step", [
    ("cyclegan", 2 + 2 * 3),  # G: D_B(fake_b), D_A(fake_a); D: real, pooled fake and the penalty's interpolates, twice
    ("cut", 3 + 1),  # D: real, fake, interpolates; G: D(fake_b)
    ("fastcut", 3 + 1),
])
def test_every_discriminator_input_is_augmented_for_every_objective(tiny_recipe, with_plugin, objective, per_step):
    with_plugin(Outside(), "outside-augmentation")
    Outside.calls.clear()
    cut = ["objective.params={nce_layers: [input, down1, down2, block1], num_patches: 16}"] if objective != "cyclegan" else []
    result = train(tiny_recipe(f"objective.name={objective}", *cut, "losses.adversarial.name=wgan",
                               "augment.name=counting", "augment.params.scale=1.0", "train.max_steps=2", FP32))
    assert len(Outside.calls) == 2 * per_step  # sample grids and probes (eval mode) are not augmented
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["augment"]["name"] == "counting" and "rng" in state["augment"]
    assert state["plugins"]["augment"]["plugin"] == "outside-augmentation"


class Bypass(nn.Module):
    """A discriminator phase that judges through D's forward() called directly: it would skip the
    engine's augmentation."""

    def __init__(self, d, adversarial):
        super().__init__()
        self.d, self.adversarial = d, adversarial

    def forward(self, real, fake):
        return self.adversarial.judge(lambda x: self.d.forward(x), real, fake)


def test_check_objective_catches_a_discriminator_called_around_the_seam():
    from unpaired.plugins.cut import CUT

    class Around(CUT):
        def __init__(self, parts, **params):
            super().__init__(parts, **params)
            self.phases["d"] = Bypass(self.d, self.adversarial)

    params = {"nce_layers": ["input", "down1", "down2", "block1"], "num_patches": 8}
    check_objective(CUT, **params)
    with pytest.raises(AssertionError, match=r"d\(x\), not d.forward\(x\)"):
        check_objective(Around, **params)


def test_inference_never_augments(tiny_recipe):
    from unpaired.engine.assemble import assemble
    from unpaired.engine.restore import load_translators

    cfg = tiny_recipe("augment.name=diffaugment", "train.max_steps=1", FP32)
    trainer = Trainer(cfg)
    assert all(net._forward_pre_hooks for net in trainer.assembly.discriminators())
    result = trainer.run()
    inference = assemble(cfg, channels=(3, 3), purpose="inference")
    assert inference.augmentation is None
    assert not any(m._forward_pre_hooks for m in inference.objective.modules())
    translators, _ = load_translators(result.checkpoint)
    assert not any(m._forward_pre_hooks for m in translators.modules())


def test_a_training_builds_its_augmentation_once(tiny_recipe, monkeypatch):
    """check_recipe builds it (its param values checked before any data); assemble hooks that
    one onto the discriminators instead of building another."""
    from unpaired.registry import Registry

    built = []
    create = Registry.create

    def counting(self, kind, name, *args, **kwargs):
        module = create(self, kind, name, *args, **kwargs)
        if kind == "augmentation":
            built.append(module)
        return module

    monkeypatch.setattr(Registry, "create", counting)
    trainer = Trainer(tiny_recipe("augment.name=diffaugment", "train.max_steps=1", FP32))
    assert len(built) == 1
    assert trainer.augmentation.module is built[0]
    assert all(net._forward_pre_hooks for net in trainer.assembly.discriminators())


@pytest.mark.slow
def test_resume_with_ada_is_bit_exact(tiny_recipe, tmp_path):
    # p starts where the augmentation acts, adjusts every 3 steps (across the resume: statistics
    # of step 1-2 are in the checkpoint), and moves by 0.75 each time
    common = ("augment.name=ada", "augment.params={p: 0.4, interval: 3, speed: 4}", "objective.params.pool_size=2",
              "train.log_every=1", FP32)
    full = train(tiny_recipe(*common, out="full"))
    train(tiny_recipe(*common, "train.max_steps=2", out="split"))
    resumed = train(tiny_recipe(*common, out="split"), resume=True)
    a, b = (torch.load(r.checkpoint, weights_only=True) for r in (full, resumed))
    for net in a["nets"]:
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), (net, k)
    for k in ("p", "stats", "rt"):
        assert torch.equal(a["augment"]["state"][k], b["augment"]["state"][k]), k
    assert torch.equal(a["augment"]["rng"], b["augment"]["rng"])
    assert float(a["augment"]["state"]["p"]) != 0.4  # it moved at step 3
    rows = list(csv.DictReader(open(tmp_path / "split" / "metrics.csv")))
    assert [r["ada_p"] for r in rows][:2] == ["0.4000000059604645"] * 2  # logged; the same before step 3
    assert float(rows[3]["ada_p"]) == pytest.approx(float(b["augment"]["state"]["p"]))


@pytest.mark.slow
def test_bf16_and_compile_train_with_ada(tiny_recipe):
    result = train(tiny_recipe("augment.name=ada", "augment.params={p: 0.5, interval: 1, speed: 2, max_p: 1.0}",
                               "train.precision=bf16", "train.compile=true", "train.compile_backend=aot_eager",
                               "train.max_steps=2"))
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["precision"] == "bf16"
    assert state["augment"]["state"]["p"].dtype == torch.float32
    assert float(state["augment"]["state"]["p"]) in (0.0, 1.0)  # moved by a whole step each time: 0.5 +- 0.5 +- 0.5


# --------------------------------------------------------------------------- the recipe
@pytest.mark.parametrize("args,words", [
    (["augment.name=ada", "augment.params.target=2"], ["augment.params.target", ">= -1.0 and <= 1"]),
    (["augment.name=ada", "augment.params.interval=0"], ["augment.params.interval", "integer >= 1"]),
    (["augment.name=ada", "augment.params.speed=.nan"], ["augment.params.speed", "finite"]),
    (["augment.name=ada", "augment.params.transforms=[xflip, hue]"], ["augment.params.transforms[1]", "'hue'"]),
    (["augment.name=diffaugment", "augment.params.translation=-1"], ["augment.params.translation"]),
    (["augment.name=diffaugment", "augment.params.color=1"], ["augment.params.color", "true or false"]),
    (["augment.name=diffaugment", "augment.params.colour=true"], ["augment.params.colour", "'color'"]),
    (["augment.name=adaa"], ["augment.name", "'ada'"]),
])
def test_bad_params_exit_2_naming_the_key(capsys, image_root, tmp_path, args, words):
    from unpaired.cli import main

    from helpers import RECIPE, TINY

    code = main(["run", str(RECIPE), *TINY, f"data.params.root={image_root}", f"out_dir={tmp_path / 'r'}", *args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert all(w in " ".join(err.split()) for w in words), err
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_augment_null_and_the_plugins_listing(capsys, tmp_path):
    from unpaired.cli import main
    from unpaired.recipe.config import from_container, load_recipe

    from helpers import RECIPE

    recipe = tmp_path / "r.yaml"
    text = re.sub(r"(?m)^augment:.*$", "", RECIPE.read_text())  # the recipe's own choice, replaced
    recipe.write_text(text + "\naugment: null\n")
    assert load_recipe(recipe).augment.name is None
    assert load_recipe(recipe, ["augment.name=ada"]).augment.name == "ada"
    assert from_container({"name": "x", "augment": None}).augment.name is None  # a checkpoint's recipe
    assert main(["plugins", "-v"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "augmentation: diffaugment, ada" in out
    assert "augmentation ada(p=0.0, target=0.6, interval=4, speed=1000, max_p=0.8" in out
    assert "augmentation diffaugment(color=True, translation=0.125, cutout=0.5)" in out


@pytest.mark.slow
def test_resume_may_switch_the_augmentation_on(tiny_recipe, caplog):
    import logging

    train(tiny_recipe("train.max_steps=2", FP32))
    with caplog.at_level(logging.INFO, logger="unpaired"):
        resumed = train(tiny_recipe("train.max_steps=3", "augment.name=ada", "augment.params.p=0.25", FP32), resume=True)
    assert resumed.step == 3
    assert any("holds no augmentation state; 'ada' starts afresh" in r.getMessage() for r in caplog.records)
    assert float(torch.load(resumed.checkpoint, weights_only=True)["augment"]["state"]["p"]) == 0.25
