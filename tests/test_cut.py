"""CUT and FastCUT: PatchNCE by hand, the step's order and parameter groups, resume, compile,
bf16, one-sided translate/eval, and the objective errors."""
import copy
import logging

import pytest
import torch
import torch.nn.functional as F

import unpaired
from unpaired import UnpairedError
from unpaired.store import checkpoint
from unpaired.plugins.patchnce import patch_nce_loss
from unpaired.engine.trainer import Trainer, train

from helpers import nce_over_every_position, plain_generator_class

CUT = ["objective.name=cut", "generator.params={ngf: 4, n_blocks: 2}",
       "objective.params={nce_layers: [input, down1, down2, block1, block2]}"]


def cut_recipe(tiny_recipe, *overrides, name="cut", out="run"):
    return tiny_recipe(*[o.replace("=cut", f"={name}") if o.startswith("objective.name") else o for o in CUT],
                       *overrides, out=out)


def normalised(*shape):
    return F.normalize(torch.randn(*shape), dim=-1)


# --- PatchNCE --------------------------------------------------------------------------------
def test_patch_nce_loss_by_hand():
    torch.manual_seed(0)
    q, k, t = normalised(3, 4), normalised(3, 4), 0.07
    got = patch_nce_loss(q, k, n_images=1, temperature=t)
    for i in range(3):
        # the positive (same position) first, then every other position of the image
        logits = [q[i] @ k[i]] + [q[i] @ k[j] for j in range(3) if j != i]
        logits = torch.stack(logits) / t
        # the masked diagonal adds one more (near-zero) term exp(-10 / t)
        expected = -logits[0] + torch.log(logits.exp().sum() + torch.exp(torch.tensor(-10.0 / t)))
        assert torch.isclose(got[i], expected, atol=1e-5), (i, got[i], expected)
    # identical query and key, orthogonal patches: the positive wins by far
    eye = torch.eye(4)[:3]
    assert patch_nce_loss(eye, eye, 1, t).max() < 1e-4


def test_patch_nce_negatives_come_from_the_same_image_only():
    torch.manual_seed(0)
    q, k = normalised(2 * 5, 8), normalised(2 * 5, 8)
    first = patch_nce_loss(q, k, n_images=2)[:5]
    k2 = k.clone()
    k2[5:] = normalised(5, 8)  # another second image
    assert torch.allclose(patch_nce_loss(q, k2, n_images=2)[:5], first)
    assert torch.allclose(first, patch_nce_loss(q[:5], k[:5], n_images=1))
    # no gradient reaches the key
    q.requires_grad_(True)
    k.requires_grad_(True)
    patch_nce_loss(q, k, 2).mean().backward()
    assert q.grad is not None and k.grad is None


def full_nce(objective, src, tgt, flip=False):
    """NCE over every position of every layer (order-free), by hand: F's MLP then L2 norm."""
    gp = objective.generator_pass
    with torch.no_grad():
        keys = gp.tap(src)
        queries = gp.tap(tgt)
    if flip:
        queries = [f.flip(3) for f in queries]
    return nce_over_every_position(objective.f.mlps, keys, queries, src.shape[0])


# --- the step --------------------------------------------------------------------------------
def test_cut_step_discriminator_first_then_generator_and_f(tiny_recipe):
    trainer = Trainer(cut_recipe(tiny_recipe, "objective.params.num_patches=100000", "train.precision=fp32"))
    m = trainer.model
    g, d, f = (copy.deepcopy(n) for n in (m.g, m.d, m.f))
    order = []
    update = trainer.update
    trainer.update = lambda phase, loss: (order.append(phase), update(phase, loss))
    trainer.model.generator_pass.fuse = False
    torch.manual_seed(1)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        fake_b, idt_b = m.g(a), m.g(b)
        nce, nce_idt = full_nce(m, a, fake_b), full_nce(m, b, idt_b)
    terms = trainer.train_step(a, b)
    assert order == ["d", "g"]
    adv = m.adversarial  # the recipe's bce
    with torch.no_grad():
        assert torch.isclose(terms["d"], adv.discriminator_loss(d(b), d(fake_b)), atol=1e-6)
        # the generator's adversarial term sees the discriminator after its update
        assert torch.isclose(terms["g_adv"], adv.generator_loss(m.d(fake_b)), atol=1e-6)
        assert not torch.isclose(terms["g_adv"], adv.generator_loss(d(fake_b)), atol=1e-7)
    assert torch.isclose(terms["nce"], nce, atol=1e-5) and torch.isclose(terms["nce_idt"], nce_idt, atol=1e-5)
    assert torch.isclose(terms["g_total"], terms["g_adv"] + 0.5 * (nce + nce_idt), atol=1e-5)
    for old, new in ((g, m.g), (d, m.d), (f, m.f)):  # all three networks moved
        assert any(not torch.equal(p, q) for p, q in zip(old.parameters(), new.parameters()))
    assert set(trainer.optimizers) == {"g", "d"}
    assert {id(p) for p in trainer.optimizers["g"].param_groups[0]["params"]} == \
        {id(p) for p in [*m.g.parameters(), *m.f.parameters()]}


def test_fastcut_is_lambda_10_no_identity_and_flip_equivariance(tiny_recipe, monkeypatch):
    trainer = Trainer(cut_recipe(tiny_recipe, "objective.params.num_patches=100000", "train.precision=fp32",
                                 name="fastcut"))
    m = trainer.model
    assert (m.lambda_nce, m.nce_idt, m.flip_equivariance) == (10.0, False, True)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    monkeypatch.setattr(torch, "rand", lambda *s, **k: torch.zeros(()))  # the coin: flip
    with torch.no_grad():
        flipped_fake = m.g(a.flip(3))
        expected = full_nce(m, a, flipped_fake, flip=True)
    terms = trainer.train_step(a, b)
    assert set(terms) == {"d", "g_adv", "nce", "g_total", "loss_d", "loss_g"}
    assert torch.equal(terms["loss_g"], terms["g_total"]) and torch.equal(terms["loss_d"], terms["d"])
    assert torch.isclose(terms["nce"], 10 * expected, atol=1e-4)


@pytest.mark.slow
def test_cut_resumes_bit_exactly(tiny_recipe):
    common = ("objective.params.flip_equivariance=true", "data.batch_size=2")
    full = train(cut_recipe(tiny_recipe, *common, out="full"))
    train(cut_recipe(tiny_recipe, *common, "train.max_steps=2", out="split"))
    resumed = train(cut_recipe(tiny_recipe, *common, out="split"), resume=True)
    assert resumed.step == full.step == 4
    a, b = (torch.load(r.checkpoint, weights_only=True)["nets"] for r in (full, resumed))
    assert set(a) == {"g", "d", "f"}
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


@pytest.mark.slow
def test_cut_compiles_and_trains_in_bf16(tiny_recipe):
    compiled = train(cut_recipe(tiny_recipe, "train.compile=true", "train.compile_backend=aot_eager",
                                "train.max_steps=1"))
    assert set(torch.load(compiled.checkpoint, weights_only=True)["nets"]["f"]) == \
        {f"mlps.{i}.{j}.{w}" for i in range(5) for j in (0, 2) for w in ("weight", "bias")}
    trainer = Trainer(cut_recipe(tiny_recipe, "train.precision=bf16", "train.max_steps=1", out="bf16"))
    terms = trainer.train_step(torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1)
    assert all(torch.isfinite(v) for v in terms.values())


# --- one-sided checkpoints downstream --------------------------------------------------------
@pytest.mark.slow
def test_one_sided_checkpoint_translates_a2b_only_and_evaluates(tiny_recipe, tmp_path, capsys):
    from PIL import Image

    from unpaired import cli
    from unpaired.inference.translate import Translator

    result = train(cut_recipe(tiny_recipe, "train.max_steps=2"))
    state = checkpoint.load(result.checkpoint)
    assert state["format"] == 2 and state["objective"] == "cut"
    assert state["translators"] == {"a2b": {"net": "g", "in_channels": 3, "out_channels": 3}}
    src = tmp_path / "in.png"
    Image.new("RGB", (40, 36), (200, 30, 60)).save(src)
    assert cli.main(["translate", str(result.checkpoint), str(src), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert Image.open(tmp_path / "o" / "in.png").size == (40, 36)
    capsys.readouterr()
    code = cli.main(["translate", str(result.checkpoint), str(src), "--direction", "b2a", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert code == 2 and "one-sided" in err and "'cut'" in err and "--direction b2a" in err
    with pytest.raises(UnpairedError, match="direction='b2a': .* one-sided"):  # the Python argument, not the flag
        Translator.from_checkpoint(result.checkpoint, direction="b2a")
    capsys.readouterr()
    code = cli.main(["export", str(result.checkpoint), "--direction", "b2a", "--format", "pt2",
                     "--out", str(tmp_path / "g.pt2")])
    assert code == 2 and "one-sided" in capsys.readouterr().err and not (tmp_path / "g.pt2").exists()
    assert cli.main(["export", str(result.checkpoint), "--format", "pt2", "--out", str(tmp_path / "g.pt2")]) == 0
    assert (tmp_path / "g.pt2").is_file()
    code = cli.main(["eval", str(result.out_dir), "--extractor", "tiny", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "A→B" in out and "B→A" not in out
    import json

    scores = json.loads((result.out_dir / "eval" / "metrics.json").read_text())["metrics"]
    assert "kid_a2b" in scores and "kid_b2a" not in scores and "cycle_l1_a" not in scores


# --- recipes and errors ----------------------------------------------------------------------
def test_unknown_objective_and_params_name_the_key(tiny_recipe):
    with pytest.raises(UnpairedError, match=r"objective.name.*Did you mean 'cut'"):
        Trainer(tiny_recipe("objective.name=cutt"))
    with pytest.raises(UnpairedError, match=r"objective.params.lambda_nc: .*Did you mean 'lambda_nce'"):
        Trainer(tiny_recipe("objective.name=cut", "objective.params.lambda_nc=2"))
    with pytest.raises(UnpairedError, match=r"objective.params.nce_layers \(objective 'cut'\): resnet has no feature layer 'block9'; its layers: input, down1"):
        Trainer(cut_recipe(tiny_recipe, "objective.params.nce_layers=[input, block9]"))


def test_a_cyclegan_recipe_swaps_to_fastcut_with_one_warning(tiny_recipe, caplog):
    with caplog.at_level(logging.WARNING, logger="unpaired"):
        trainer = Trainer(tiny_recipe("objective.name=fastcut", "generator.params={ngf: 4, n_blocks: 5}"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "losses.cycle, losses.identity: not used by objective 'fastcut'" in warnings[0]
    losses = trainer.assembly.losses  # resolved for the objective; the recipe itself stays as written
    assert list(losses) == ["adversarial"] and losses["adversarial"]["name"] == "bce"
    assert set(trainer.cfg.losses) == {"adversarial", "cycle", "identity"}


def test_a_loss_role_the_objective_needs_and_the_recipe_lacks(tiny_recipe, with_plugin):
    from unpaired.engine.objective import RECONSTRUCTION
    from unpaired.plugins.cyclegan import CycleGAN

    class Needy(CycleGAN):
        losses = {**CycleGAN.losses, "perceptual": None}
        loss_kinds = {**CycleGAN.loss_kinds, "perceptual": RECONSTRUCTION}

        def __init__(self, parts):
            super().__init__(parts)
            self.perceptual = parts.loss("perceptual")

    class Plugin:
        @unpaired.hookimpl
        def register_objectives(self, register):
            register("needy", Needy)

    with_plugin(Plugin(), "needy-plugin")
    with pytest.raises(UnpairedError, match=r"losses.perceptual.name: objective 'needy' asks for a 'perceptual'"):
        Trainer(tiny_recipe("objective.name=needy"))
    with pytest.raises(UnpairedError, match=r"losses.perceptual.name: loss 'bce' is an adversarial loss"):
        Trainer(tiny_recipe("objective.name=needy", "losses.perceptual.name=bce"))
    assert Trainer(tiny_recipe("objective.name=needy", "losses.perceptual.name=l1")).model.perceptual


def test_a_generator_without_features_uses_module_paths(tiny_recipe, with_plugin):
    Plain = plain_generator_class()

    class Plugin:
        @unpaired.hookimpl
        def register_generators(self, register):
            register("plain", Plain)

    with_plugin(Plugin(), "plain-plugin")
    base = ("objective.name=cut", "generator.name=plain", "generator.params={}")
    with pytest.raises(UnpairedError, match=r"no features\(x, layers\) method.*no module 'input'"):
        Trainer(tiny_recipe(*base))
    trainer = Trainer(tiny_recipe(*base, "objective.params.nce_layers=[body.0, body.2]"))
    assert [m[0].in_features for m in trainer.model.f.mlps] == [8, 3]
    terms = trainer.train_step(torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1)
    assert torch.isfinite(terms["nce"])
