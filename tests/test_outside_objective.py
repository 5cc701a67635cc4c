"""An objective written from docs/plugins.md ("Objectives") alone, as an outside package would: a
one-sided GAN whose translator is an exponential moving average (EMA) of its generator, with an
EMA warm-up that reads the step from the engine. Each test leans on one promise of the contract:
networks come initialised and are never re-initialised (the EMA copy made in __init__ stays),
update(phase) keeps a loss out of other phases' gradients (no freezing in the objective), judge
adds a loss's penalty exactly once, step.index resumes right, translator() is what inference runs."""
import copy

import pytest
import torch
from torch import nn

from helpers import tiny_recipe as make_recipe

from unpaired import UnpairedError, hookimpl
from unpaired.engine.objective import ADVERSARIAL, Objective
from unpaired.testing import check_objective
from unpaired.engine.trainer import Trainer, train


class Generate(nn.Module):
    def __init__(self, g):
        super().__init__()
        self.g = g

    def forward(self, a):
        return self.g(a)


class Judge(nn.Module):
    def __init__(self, d, adversarial):
        super().__init__()
        self.d, self.adversarial = d, adversarial

    def forward(self, b, fake_b):
        return self.adversarial.judge(self.d, b, fake_b)


class EMAGAN(Objective):
    """One-sided GAN; the translator is an EMA of G (decay ``decay`` after ``warmup`` steps of
    plain copying)."""

    losses = {"adversarial": {"name": "lsgan", "weight": 1.0}}
    loss_kinds = {"adversarial": ADVERSARIAL}
    translators = {"a2b": "g_ema"}

    def __init__(self, parts, decay=0.9, warmup=2):
        super().__init__()
        ca, cb = parts.channels
        self.g, self.d = parts.generator(ca, cb), parts.discriminator(cb)
        self.g_ema = parts.generator(ca, cb)
        self.g_ema.load_state_dict(self.g.state_dict())  # the usual way an EMA starts
        self.g_ema.requires_grad_(False)
        self.adversarial = parts.loss("adversarial")
        self.decay, self.warmup = decay, warmup
        self.phases = {"g": Generate(self.g), "d": Judge(self.d, self.adversarial)}
        self.seen = []  # (step.index, what update("g") returned, D's grads unchanged by the G update)

    def networks(self):
        return {"g": self.g, "d": self.d, "g_ema": self.g_ema}

    def param_groups(self):
        return {"g": list(self.g.parameters()), "d": list(self.d.parameters())}

    def train_step(self, step, a, b, update):
        fake_b = step["g"](a)
        terms = {"d": step["d"](b, fake_b)}
        update("d", terms["d"])
        d_grads = [p.grad.clone() for p in self.d.parameters()]
        terms["g_adv"] = self.adversarial.generator_loss(self.d(fake_b))  # through D, D not frozen
        stepped = update("g", terms["g_adv"])
        untouched = all(torch.equal(p.grad, g) for p, g in zip(self.d.parameters(), d_grads))
        self.seen.append((step.index, stepped, untouched))
        if stepped:
            decay = 0.0 if step.index < self.warmup else self.decay  # the warm-up reads the engine's step
            with torch.no_grad():
                for e, p in zip(self.g_ema.parameters(), self.g.parameters()):
                    e.mul_(decay).add_(p, alpha=1 - decay)
        return terms


class PenaltyCounted:
    """lsgan plus a penalty of exactly 7 (0 gradient-wise irrelevant): the log shows how often it was added."""

    def __init__(self):
        from unpaired.plugins.losses import lsgan

        self.base = lsgan()

    def generator_loss(self, fake_logits):
        return self.base.generator_loss(fake_logits)

    def discriminator_loss(self, real_logits, fake_logits):
        return self.base.discriminator_loss(real_logits, fake_logits)

    def penalty(self, discriminator, real, fake):
        return 7.0 + 0.0 * discriminator(real).sum()


class HandPenalty(EMAGAN):
    """Adds the penalty by hand (the pre-0.2 way) instead of judging: refused."""

    def train_step(self, step, a, b, update):
        fake_b = step["g"](a)
        adv = self.adversarial
        loss = adv.discriminator_loss(self.d(b), self.d(fake_b.detach()))
        penalty = getattr(adv, "penalty", None)  # hidden: None, so nothing is added twice
        if penalty is not None:
            loss = loss + penalty(self.d, b, fake_b.detach())
        update("d", loss)
        update("g", adv.generator_loss(self.d(fake_b)))
        return {"d": loss}


class Plugin:
    @hookimpl
    def register_objectives(self, register):
        register("ema_gan", EMAGAN, help="test: a one-sided GAN with an EMA translator")
        register("hand_penalty", HandPenalty, help="test: adds its penalty by hand")

    @hookimpl
    def register_losses(self, register):
        register("lsgan_penalty7", PenaltyCounted, help="test: lsgan with a penalty of 7")


@pytest.fixture
def recipe(with_plugin, image_root, tmp_path):
    with_plugin(Plugin(), "outside_objective")

    def make(*overrides, out="run"):
        return make_recipe(image_root, tmp_path / out, "objective.name=ema_gan", "train.precision=fp32", *overrides)

    return make


def test_it_passes_the_contract_check(with_plugin):
    with_plugin(Plugin(), "outside_objective")
    check_objective("ema_gan")
    with pytest.raises(AssertionError, match="judge"):
        check_objective("hand_penalty")  # the check steps once with wgan, whose penalty needs judge


def test_the_ema_copy_made_in_init_is_not_reinitialised(recipe):
    trainer = Trainer(recipe())
    m = trainer.objective
    for e, p in zip(m.g_ema.state_dict().values(), m.g.state_dict().values()):
        assert torch.equal(e, p)
    first = next(p for p in m.g.parameters() if p.dim() == 4)
    assert 0.015 < float(first.detach().std()) < 0.025  # initialised as train.init says: N(0, 0.02)


def test_a_generator_loss_through_d_leaves_ds_gradients_and_reads_the_step(recipe):
    trainer = Trainer(recipe("train.max_steps=3"))
    trainer.run()
    assert trainer.objective.seen == [(0, True, True), (1, True, True), (2, True, True)]
    m = trainer.objective
    ema = m.g_ema.state_dict()
    assert any(not torch.equal(ema[k], v) for k, v in m.g.state_dict().items())  # after the warm-up the EMA lags G


def test_judge_adds_the_penalty_once_and_a_hand_added_one_is_refused(recipe):
    trainer = Trainer(recipe("losses.adversarial.name=lsgan_penalty7"))
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    terms = trainer.train_step(a, b)
    assert float(terms["penalty"]) == 7.0
    assert float(terms["loss_d"]) == pytest.approx(float(terms["d"]))  # judge's loss includes the 7, once
    plain = float(terms["d"]) - 7.0
    assert 0 <= plain < 7
    hand = Trainer(recipe("objective.name=hand_penalty", "losses.adversarial.name=lsgan_penalty7", out="hand"))
    with pytest.raises(UnpairedError, match="judge"):
        hand.train_step(a, b)


@pytest.mark.slow
def test_resume_2_plus_2_is_4_with_the_ema_and_the_warmup(recipe):
    whole = train(recipe("train.max_steps=4", out="whole"))
    train(recipe("train.max_steps=2", out="split"))
    resumed = train(recipe("train.max_steps=4", out="split"), resume=True)
    a = torch.load(whole.checkpoint, weights_only=True)["nets"]
    b = torch.load(resumed.checkpoint, weights_only=True)["nets"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def test_translate_runs_the_ema_translator(recipe):
    from unpaired.inference.translate import Translator

    result = train(recipe("train.max_steps=3"))
    nets = torch.load(result.checkpoint, weights_only=True)["nets"]
    t = Translator.from_checkpoint(result.checkpoint, device="cpu", precision="fp32")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    ema = copy.deepcopy(t.generator)
    ema.load_state_dict(nets["g_ema"])
    g = copy.deepcopy(t.generator)
    g.load_state_dict(nets["g"])
    with torch.no_grad():
        assert torch.equal(t.translate_tensor(x), ema(x))
        assert not torch.equal(ema(x), g(x))
