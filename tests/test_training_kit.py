"""The training kit every objective gets from the engine: the averaged generator (train.ema), R1
(losses.adversarial.params.r1_gamma), gradient accumulation (train.accumulate) and per-phase
learning rates and betas (train.phase_lr, train.phase_betas)."""
import pytest
import torch
from torch import nn

from unpaired import UnpairedError
from unpaired.engine.average import Averaged
from unpaired.engine.objective import Adversarial
from unpaired.engine.restore import load_translators
from unpaired.engine.trainer import Trainer, train

FP32 = "train.precision=fp32"
NO_NORM = ["generator.params={ngf: 4, n_blocks: 1, norm: none}",
           "discriminator.params={ndf: 4, n_layers: 2, norm: none}"]


def weights(path, key="nets"):
    return torch.load(path, weights_only=True)[key]


# -- the averaged generator ------------------------------------------------------------------
def test_the_average_follows_the_warm_up_rule_and_copies_buffers():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    averaged = Averaged({"g": net}, decay=0.5)
    start = net[0].weight.detach().clone()
    expected = start.clone()
    for n in range(4):
        with torch.no_grad():
            net[0].weight.add_(1.0)
            net[1].running_mean.add_(3.0)
        averaged.update()
        d = min(0.5, (1 + n) / (10 + n))  # 0.1, 0.18..., then capped at 0.5
        expected = d * expected + (1 - d) * net[0].weight.detach()
        assert torch.allclose(averaged.weights["g"]["0.weight"], expected, atol=1e-6), n
    assert averaged.updates == 4
    # buffers are copied, not averaged
    assert torch.equal(averaged.weights["g"]["1.running_mean"], net[1].running_mean)
    trained = net[0].weight.detach().clone()
    with averaged.lent():
        assert torch.allclose(net[0].weight, expected)
    assert torch.equal(net[0].weight, trained)  # put back exactly


@pytest.mark.slow
def test_ema_checkpoints_hold_the_average_and_readers_use_it_unless_raw(tiny_recipe, tmp_path):
    result = train(tiny_recipe("train.ema=0.9", "train.keep_every=2", FP32))
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["averaged"]["updates"] == 4 and state["averaged"]["decay"] == 0.9
    assert set(state["averaged"]["nets"]) == {"g_ab", "g_ba"}  # the translating networks only
    avg, raw = state["averaged"]["nets"]["g_ab"], state["nets"]["g_ab"]
    assert any(not torch.equal(avg[k], raw[k]) for k in avg)
    for kept in (result.checkpoint, tmp_path / "run" / "checkpoints" / "step_2.pt"):
        model, opened = load_translators(kept)
        assert opened["weights"] == "averaged"
        saved = weights(kept, "averaged")["nets"]["g_ab"]
        assert all(torch.equal(v, saved[k]) for k, v in model["a2b"].state_dict().items())
        model, opened = load_translators(kept, raw=True)
        assert opened["weights"] == "trained"
        saved = weights(kept)["g_ab"]
        assert all(torch.equal(v, saved[k]) for k, v in model["a2b"].state_dict().items())


@pytest.mark.slow
def test_samples_and_evaluation_during_training_translate_with_the_average(tiny_recipe):
    trainer = Trainer(tiny_recipe("train.ema=0.5", "train.max_steps=3", FP32))
    trainer.run()
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    shown = trainer.sample_images(batch)["a2b"][1]
    g = trainer.objective.networks()["g_ab"].eval()
    with torch.no_grad():
        raw = ((g(batch["A"]) + 1) / 2).clamp(0, 1)
        with trainer.averaged.lent():
            averaged = ((g(batch["A"]) + 1) / 2).clamp(0, 1)
    assert torch.allclose(shown, averaged, atol=1e-6) and not torch.allclose(shown, raw, atol=1e-4)


@pytest.mark.slow
def test_resume_with_ema_is_bit_exact_and_a_checkpoint_without_it_starts_one(tiny_recipe, caplog):
    common = ["train.ema=0.9", FP32]
    full = torch.load(train(tiny_recipe(*common, out="full")).checkpoint, weights_only=True)
    train(tiny_recipe(*common, "train.max_steps=2", out="split"))
    split = torch.load(train(tiny_recipe(*common, out="split"), resume=True).checkpoint, weights_only=True)
    for key in ("nets", ):
        assert all(torch.equal(full[key][n][k], split[key][n][k]) for n in full[key] for k in full[key][n])
    avg_full, avg_split = full["averaged"]["nets"], split["averaged"]["nets"]
    assert all(torch.equal(avg_full[n][k], avg_split[n][k]) for n in avg_full for k in avg_full[n])
    assert split["averaged"]["updates"] == full["averaged"]["updates"] == 4

    import logging

    train(tiny_recipe(FP32, "train.max_steps=2", out="late"))
    with caplog.at_level(logging.INFO, logger="unpaired"):
        late = train(tiny_recipe(*common, out="late"), resume=True)
    assert any("holds no averaged generator" in r.getMessage() for r in caplog.records)
    assert torch.load(late.checkpoint, weights_only=True)["averaged"]["updates"] == 2


@pytest.mark.slow
def test_translate_raw_uses_the_trained_weights(tiny_recipe, tmp_path, image_root):
    from unpaired.cli import main
    from PIL import Image
    import numpy as np

    train(tiny_recipe("train.ema=0.5", FP32))
    outs = {}
    for flag in ([], ["--raw"]):
        out = tmp_path / ("raw" if flag else "avg")
        assert main(["translate", str(tmp_path / "run"), str(image_root / "testA" / "00.png"), "--out", str(out),
                     "--precision", "fp32", "--no-progress", *flag]) == 0
        outs[bool(flag)] = np.asarray(Image.open(out / "00.png"), dtype=np.int16)
    assert np.abs(outs[True] - outs[False]).max() > 0
    from unpaired.inference.translate import Translator

    assert "averaged generator" in Translator.from_checkpoint(tmp_path / "run").describe()
    assert "averaged" not in Translator.from_checkpoint(tmp_path / "run", raw=True).describe()


# -- R1 ----------------------------------------------------------------------------------------
class Linear(nn.Module):
    """D(x) = <w, x> per image: its input gradient is w wherever it is taken."""

    def __init__(self, n):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-1, 1, n))

    def forward(self, x):
        return (x.flatten(1) * self.w).sum(1)


class Bce:
    def __init__(self, r1_gamma=0.0, r1_every=1):
        self.r1_gamma, self.r1_every = r1_gamma, r1_every

    def generator_loss(self, fake_logits):
        return -fake_logits.mean()

    def discriminator_loss(self, real_logits, fake_logits):
        return fake_logits.mean() - real_logits.mean()


def test_r1_is_gamma_over_2_times_the_squared_input_gradient_of_the_images_d_sees():
    d = Linear(12)
    real, fake = torch.rand(2, 3, 2, 2), torch.rand(2, 3, 2, 2)
    plain = Adversarial(Bce(), "x", "losses.adversarial").judge(d, real, fake)
    adv = Adversarial(Bce(r1_gamma=4.0), "x", "losses.adversarial")
    with_r1 = adv.judge(d, real, fake)
    expected = 4.0 / 2 * d.w.detach().pow(2).sum()  # ||grad||^2 = ||w||^2 for every image
    assert torch.allclose(with_r1 - plain, expected)
    assert torch.allclose(adv.penalties[0], expected)
    with_r1.backward()  # differentiable w.r.t. D's parameters: d/dw of 2 ||w||^2 is 4w, plus the loss's
    plain_grad = torch.autograd.grad(Adversarial(Bce(), "x", "k").judge(d, real, fake), d.w)[0]
    assert torch.allclose(d.w.grad, plain_grad + 4.0 * d.w.detach())

    # the augmentation is a forward pre-hook on D: the gradient is taken after it (x2 here), not
    # through it (which would give ||2w||^2)
    d.register_forward_pre_hook(lambda module, args: (args[0] * 2, *args[1:]))
    doubled = Adversarial(Bce(r1_gamma=4.0), "x", "losses.adversarial")
    doubled.judge(d, real, fake)
    assert torch.allclose(doubled.penalties[0], expected)


def test_lazy_r1_runs_at_the_steps_r1_every_divides_scaled_by_it():
    d = Linear(12)
    real, fake = torch.rand(1, 3, 2, 2), torch.rand(1, 3, 2, 2)
    adv = Adversarial(Bce(r1_gamma=2.0, r1_every=4), "x", "losses.adversarial")
    found = {}
    for step in range(6):
        adv.at_step(step)
        adv.penalties.clear()
        adv.judge(d, real, fake)
        found[step] = float(adv.penalties[0]) if adv.penalties else 0.0
    every_step = float(d.w.detach().pow(2).sum())  # gamma / 2 = 1
    assert found[0] == pytest.approx(4 * every_step) and found[4] == pytest.approx(4 * every_step)
    assert found[1] == found[2] == found[3] == found[5] == 0.0


@pytest.mark.parametrize("params,words", [
    ("{r1_gamma: -1}", "losses.adversarial.params.r1_gamma: -1"),
    ("{r1_gamma: 1, r1_every: 0}", "losses.adversarial.params.r1_every: 0"),
])
def test_bad_r1_params_name_the_key(tiny_recipe, params, words):
    with pytest.raises(UnpairedError, match=words.replace(".", r"\.")):
        Trainer(tiny_recipe(f"losses.adversarial.params={params}"))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["bce", "lsgan", "hinge"])
def test_r1_trains_and_logs_its_penalty_with_every_builtin_loss(tiny_recipe, loss, tmp_path):
    import csv

    train(tiny_recipe(f"losses.adversarial.name={loss}", "losses.adversarial.params={r1_gamma: 1.0}",
                      "augment.name=diffaugment", FP32))
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert all(float(r["penalty"]) > 0 for r in rows)


# -- gradient accumulation ----------------------------------------------------------------------
@pytest.mark.slow
def test_two_micro_batches_of_one_train_as_one_batch_of_two(tiny_recipe):
    common = [*NO_NORM, "objective.params.pool_size=0", "train.max_steps=3", "train.ema=0.9",
              "losses.adversarial.params.r1_gamma=1.0", FP32]
    once = Trainer(tiny_recipe(*common, "data.batch_size=2", out="batch2"))
    twice = Trainer(tiny_recipe(*common, "data.batch_size=1", "train.accumulate=2", out="accumulated"))
    assert twice.steps_per_epoch == once.steps_per_epoch and twice.total_steps == once.total_steps == 3
    a, b = once.run(), twice.run()
    assert "batch 1 x 2 accumulated = 2 per step" in twice.device_line
    for key in ("nets", "averaged"):
        x, y = weights(a.checkpoint, key), weights(b.checkpoint, key)
        if key == "averaged":
            x, y = x["nets"], y["nets"]
        for n in x:
            for k in x[n]:
                assert torch.allclose(x[n][k], y[n][k], atol=1e-5), (key, n, k)
    # the logged losses are the micro-batches' means: the same as the batch's
    import csv

    rows = [list(csv.DictReader(open(r.out_dir / "metrics.csv"))) for r in (a, b)]
    for ra, rb in zip(*rows):
        for key in ("g_total", "d_a", "penalty"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-4, abs=1e-6), key


def test_an_objective_updating_a_phase_twice_per_step_is_refused_with_accumulation():
    from unpaired.engine.phases import PhaseOptimizers

    w = nn.Parameter(torch.ones(2))
    opt = PhaseOptimizers({"d": [w]}, lr=0.1, accumulate=2)
    opt.start_micro(0)
    opt.update("d", (w * 2).sum())
    with pytest.raises(UnpairedError, match="train.accumulate=2: the objective updated phase 'd' twice"):
        opt.update("d", (w * 3).sum())


def test_accumulated_gradients_step_once_with_their_mean():
    from unpaired.engine.phases import PhaseOptimizers

    w = nn.Parameter(torch.zeros(1))
    opt = PhaseOptimizers({"g": [w]}, lr=0.1, accumulate=2)
    opt.optimizers["g"] = torch.optim.SGD([w], lr=1.0)
    steps = []
    opt.after_step = steps.append
    for micro, k in enumerate((1.0, 3.0)):
        opt.start_micro(micro)
        opt.update("g", (w * k).sum())
        assert float(w.detach()) == (0.0 if micro == 0 else -2.0)  # one step, with the mean gradient (1 + 3) / 2
    assert steps == ["g"] and float(opt.losses["g"]) == 0.0


# -- per-phase learning rates -----------------------------------------------------------------
def test_phase_lr_and_betas_set_each_phase_and_follow_the_schedule(tiny_recipe):
    trainer = Trainer(tiny_recipe("train.phase_lr={d: 1.0e-4}", "train.phase_betas={d: [0.0, 0.99]}",
                                  "train.lr=4.0e-4", "train.epochs=1", "train.decay_epochs=3"))
    groups = {phase: opt.param_groups[0] for phase, opt in trainer.optimizers.items()}
    assert groups["d"]["lr"] == 1.0e-4 and groups["d"]["betas"] == (0.0, 0.99)
    assert groups["g"]["lr"] == 4.0e-4 and groups["g"]["betas"] == (0.5, 0.999)
    assert trainer.set_lr(2) == pytest.approx(4.0e-4 * 0.5)  # decay epoch 2 of 3: half
    assert groups["d"]["lr"] == pytest.approx(0.5e-4) and groups["g"]["lr"] == pytest.approx(2.0e-4)


def test_a_phase_the_objective_lacks_is_named_with_its_phases(tiny_recipe):
    with pytest.raises(UnpairedError, match=r"train\.phase_lr\.e: objective 'cyclegan' has no phase 'e'; "
                                            r"its phases: g, d"):
        Trainer(tiny_recipe("train.phase_lr={e: 1.0e-4}"))


def test_r1_of_a_patch_discriminator_takes_an_image_score_as_the_mean_of_its_patches():
    class Patches(Linear):
        def forward(self, x):  # four patches, each the linear score: the image's score is their mean
            return super().forward(x)[:, None, None, None].expand(-1, 1, 2, 2)

    d = Patches(12)
    adv = Adversarial(Bce(r1_gamma=2.0), "x", "losses.adversarial")
    adv.judge(d, torch.rand(2, 3, 2, 2), torch.rand(2, 3, 2, 2))
    assert torch.allclose(adv.penalties[0], d.w.detach().pow(2).sum())  # not 4^2 times it (a sum of patches)


def test_accumulation_under_a_gradient_scaler_unscales_and_steps_once():
    from unpaired.engine.phases import PhaseOptimizers

    class Counting(torch.amp.GradScaler):
        unscaled = stepped = 0

        def unscale_(self, optimizer):
            Counting.unscaled += 1
            return super().unscale_(optimizer)

        def step(self, optimizer, *args, **kwargs):
            Counting.stepped += 1
            return super().step(optimizer, *args, **kwargs)

    scaler = Counting("cpu", init_scale=1024.0)
    w = nn.Parameter(torch.zeros(1))
    opt = PhaseOptimizers({"g": [w]}, lr=0.1, scaler=scaler, accumulate=3)
    opt.optimizers["g"] = torch.optim.SGD([w], lr=1.0)
    for micro, k in enumerate((1.0, 2.0, 6.0)):
        opt.start_micro(micro)
        assert opt.update("g", (w * k).sum())
    scaler.update()
    assert Counting.unscaled == Counting.stepped == 1
    assert float(w.detach()) == pytest.approx(-3.0)  # the mean gradient (1 + 2 + 6) / 3, unscaled


def test_r1_reaches_a_discriminator_given_as_a_partial_with_its_step():
    import functools

    d = Linear(12)
    adv = Adversarial(Bce(r1_gamma=2.0), "x", "losses.adversarial")
    adv.judge(functools.partial(d), torch.rand(2, 3, 2, 2), torch.rand(2, 3, 2, 2))  # UNSB: partial(D, timestep=t)
    assert torch.allclose(adv.penalties[0], d.w.detach().pow(2).sum())


KIT = ["train.ema=0.9", "losses.adversarial.params.r1_gamma=1.0", "train.accumulate=2", "train.phase_lr={d: 1.0e-4}",
       FP32]
SMALL_NCE = "objective.params={nce_layers: [input, down1], num_patches: 8}"


@pytest.mark.slow
@pytest.mark.parametrize("objective,extra", [
    ("cut", [SMALL_NCE]),
    ("fastcut", [SMALL_NCE]),
    ("unsb", [SMALL_NCE, "losses.adversarial.name=lsgan",
              "generator.params={ngf: 4, n_blocks: 1, conditioning: [timestep, noise]}",
              "discriminator.params={ndf: 4, n_layers: 2, conditioning: [timestep]}"]),
    ("gcgan", []),
])
def test_every_objective_trains_with_the_whole_kit(tiny_recipe, objective, extra):
    if objective == "gcgan":
        pytest.importorskip("unpaired_unet", reason="pip install ./examples/unpaired-unet")
    result = train(tiny_recipe(f"objective.name={objective}", *extra, *KIT))
    state = torch.load(result.checkpoint, weights_only=True)
    assert result.step == 4 and state["averaged"]["updates"] == 4
    model, _ = load_translators(result.checkpoint)
    assert model["a2b"](torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


@pytest.mark.slow
def test_eval_scores_the_average_and_says_so(tiny_recipe, tmp_path, capsys):
    import json

    from unpaired.cli import main

    train(tiny_recipe("train.ema=0.5", FP32))
    found = {}
    for flag in ([], ["--raw"]):
        out = tmp_path / ("raw" if flag else "avg")
        assert main(["eval", str(tmp_path / "run"), "--extractor", "tiny", "--out", str(out), "--precision", "fp32",
                     *flag]) == 0
        found[bool(flag)] = json.loads((out / "metrics.json").read_text())
    assert found[False]["weights"] == "averaged" and found[True]["weights"] == "trained"
    assert found[False]["metrics"]["cycle_l1_a"] != found[True]["metrics"]["cycle_l1_a"]
    assert "the averaged generator, train.ema" in capsys.readouterr().out
