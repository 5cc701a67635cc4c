"""The CycleGAN objective against a hand computation, the history pool, the schedule."""
import copy

import pytest
import torch
import torch.nn.functional as F

from unpaired.plugins.pool import ImagePool
from unpaired.engine.trainer import Trainer, lr_factor


def bce_real(x):
    return -F.logsigmoid(x).mean()


def bce_fake(x):
    return -F.logsigmoid(-x).mean()


def adam_first_step(p, grad, lr, eps=1e-8):
    # first Adam step: bias-corrected m = g, v = g^2
    return p - lr * grad / (grad.abs() + eps)


def test_one_step_matches_hand_computation(tiny_recipe):
    trainer = Trainer(tiny_recipe("objective.params.pool_size=4", "train.precision=fp32"))  # compared with fp32 by hand
    m = trainer.model
    g_ab, g_ba, d_a, d_b = (copy.deepcopy(n) for n in (m.g_ab, m.g_ba, m.d_a, m.d_b))
    torch.manual_seed(1)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1

    terms = trainer.train_step(a, b)

    # by hand, with the networks as they were before the step
    fake_b, fake_a = g_ab(a), g_ba(b)
    expected = {
        "g_adv_ab": bce_real(d_b(fake_b)),
        "g_adv_ba": bce_real(d_a(fake_a)),
        "cycle_a": 10 * (g_ba(fake_b) - a).abs().mean(),
        "cycle_b": 10 * (g_ab(fake_a) - b).abs().mean(),
        "idt_a": 5 * (g_ba(a) - a).abs().mean(),
        "idt_b": 5 * (g_ab(b) - b).abs().mean(),
    }
    loss_g = sum(expected.values())
    expected["g_total"] = loss_g
    # discriminators: the pool is not full, so it hands back the new fakes
    expected["d_a"] = 0.5 * (bce_real(d_a(a)) + bce_fake(d_a(fake_a.detach())))
    expected["d_b"] = 0.5 * (bce_real(d_b(b)) + bce_fake(d_b(fake_b.detach())))
    expected["loss_g"], expected["loss_d"] = loss_g, expected["d_a"] + expected["d_b"]  # what each update got
    assert set(terms) == set(expected)
    for k, v in expected.items():
        assert torch.allclose(terms[k], v, atol=1e-6), (k, terms[k], v)

    # the update: generators follow L_G only, discriminators follow L_D only (frozen during L_G)
    gens, discs = [g_ab, g_ba], [d_a, d_b]
    g_params = [p for n in gens for p in n.parameters()]
    d_params = [p for n in discs for p in n.parameters()]
    g_grads = torch.autograd.grad(loss_g, g_params)
    d_grads = torch.autograd.grad(expected["d_a"] + expected["d_b"], d_params)
    lr = trainer.cfg.train.lr
    new_g = [p for n in (m.g_ab, m.g_ba) for p in n.parameters()]
    new_d = [p for n in (m.d_a, m.d_b) for p in n.parameters()]
    moved = 0
    for old, grad, new in [*zip(g_params, g_grads, new_g), *zip(d_params, d_grads, new_d)]:
        # Adam's first step is lr * sign(g) where g is not float noise (conv biases before an
        # instance norm have a true gradient of 0, so their sign is noise)
        clear = grad.abs() > 1e-5
        want = adam_first_step(old, grad, lr)
        assert torch.allclose(new[clear], want[clear], atol=1e-6)
        assert ((new - old).abs() <= lr * 1.001).all()
        moved += int(clear.sum())
    assert moved > 0.9 * sum(p.numel() for p in g_params + d_params) - 100


def test_identity_weight_zero_skips_identity_terms(tiny_recipe):
    trainer = Trainer(tiny_recipe("losses.identity.weight=0"))
    terms = trainer.train_step(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))
    assert "idt_a" not in terms and "idt_b" not in terms


def test_lsgan_discriminator_averages_real_and_fake():
    import unpaired

    loss = unpaired.get_registry().create("loss", "lsgan")
    real, fake = torch.tensor([[0.5]]), torch.tensor([[0.25]])
    assert torch.isclose(loss.discriminator_loss(real, fake), torch.tensor(0.5 * (0.25 + 0.0625)))
    assert torch.isclose(loss.generator_loss(fake), torch.tensor(0.5625))


def test_pool_fills_then_mixes_and_resumes():
    pool = ImagePool(3, seed=0)
    first = [torch.full((1, 1, 2, 2), float(i)) for i in range(3)]
    for img in first:  # filling: every fake goes in and straight out
        assert torch.equal(pool.query(img), img)
    state = pool.state_dict()
    later = torch.full((8, 1, 2, 2), 9.0)
    out = pool.query(later)
    values = out[:, 0, 0, 0].tolist()
    assert any(v == 9.0 for v in values) and any(v in (0.0, 1.0, 2.0) for v in values)  # p = 0.5 swaps
    again = ImagePool(3, seed=123)
    again.load_state_dict(state)
    assert torch.equal(again.query(later), out)
    assert torch.equal(ImagePool(0).query(later), later)


@pytest.mark.parametrize("epochs,decay,expected", [
    (2, 2, [1, 1, 2 / 3, 1 / 3]),
    (1, 0, [1]),
    (0, 3, [0.75, 0.5, 0.25]),
])
def test_learning_rate_schedule(epochs, decay, expected):
    got = [lr_factor(e, epochs, decay) for e in range(epochs + decay)]
    assert got == pytest.approx(expected)
    assert got[-1] > 0  # the last epoch still trains
