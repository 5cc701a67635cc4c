"""UNSB: the bridge and the loss terms by hand, one step by hand, the sampler as the one translator
(seeds, translate, eval, export, tiling, video, figures), resume, bf16, compile, and the
conditioned networks it needs (refused at recipe time; an outside generator that declares them)."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import unpaired
from unpaired import UnpairedError
from unpaired.store import checkpoint
from unpaired.plugins.unsb import Bridge, Energy, energies, schedule
from unpaired.engine.trainer import Trainer, train

from helpers import nce_over_every_position, plain_generator_class

UNSB = ["objective.name=unsb", "generator.params={ngf: 4, n_blocks: 2, conditioning: [timestep, noise]}",
        "discriminator.params={ndf: 4, n_layers: 2, conditioning: [timestep]}",
        "objective.params={nce_layers: [input, down1, down2, block1, block2]}", "train.precision=fp32",
        "losses.adversarial.name=lsgan"]


def unsb_recipe(tiny_recipe, *overrides, out="run"):
    return tiny_recipe(*UNSB, *overrides, out=out)


# --- the bridge and the loss terms by hand ---------------------------------------------------
class Affine(nn.Module):
    """A stand-in generator: pred = 2 x + t + sum(z)."""

    conditions, noise_dim = ("timestep", "noise"), 2

    def forward(self, x, timestep=None, noise=None):
        return 2 * x + timestep + noise.sum(1)[:, None, None, None]


def test_schedule_and_the_bridge_by_hand():
    assert schedule(5) == pytest.approx([0, 0.5, 0.74, 0.86, 0.94, 1.0])
    assert schedule(3) == pytest.approx([0, 0.5, 5 / 6, 1.0])
    torch.manual_seed(0)
    bridge = Bridge(Affine(), 3, tau=0.04, channels=1)
    assert bridge.noise_inputs == {"z": ("N", 3, 2), "eps": ("N", 2, 1, "H", "W")}
    x, z, eps = torch.randn(1, 1, 2, 2), torch.randn(1, 3, 2), torch.randn(1, 2, 1, 2, 2)
    # t = 1: delta 0.5, denom 1 -> inter 0.5, scale 0.25: sd sqrt(0.25 * 0.04) = 0.1
    # t = 2: delta 1/3, denom 0.5 -> inter 2/3, scale 1/9: sd sqrt(0.04 / 9) = 0.2 / 3
    pred0 = 2 * x + 0 + z[0, 0].sum()
    x1 = 0.5 * x + 0.5 * pred0 + 0.1 * eps[:, 0]
    pred1 = 2 * x1 + 1 + z[0, 1].sum()
    x2 = x1 / 3 + 2 / 3 * pred1 + 0.2 / 3 * eps[:, 1]
    pred2 = 2 * x2 + 2 + z[0, 2].sum()
    preds = bridge.predictions(x, z, eps)
    for got, want in zip(preds, (pred0, pred1, pred2)):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(bridge(x, z=z, eps=eps), pred2)
    torch.testing.assert_close(bridge.roll_out(x, 2, z, eps), x2)


def test_energy_terms_by_hand():
    def e(x, timestep):  # a stand-in energy network on two pairs side by side: a 2x2 map
        return (x[:, :1] * x[:, 2:3] + x[:, 3:4]) + timestep

    torch.manual_seed(0)
    p1, p2 = torch.randn(2, 2, 2, 2), torch.randn(2, 2, 2, 2)
    same, cross = energies(e, p1, p2, 3)
    for i in range(2):
        assert torch.isclose(same[i], (p1[i, 0] * p1[i, 0] + p1[i, 1] + 3).mean())
        assert torch.isclose(cross[i], torch.log(torch.exp(p1[i, 0] * p2[i, 0] + p2[i, 1] + 3).sum()))
    loss = Energy(e)(p1, p2, 3)
    assert torch.isclose(loss, (-same + cross + cross ** 2).mean())
    # at batch 1 (the paper's) this is the authors' formula, one logsumexp over the whole map
    temp = torch.logsumexp(e(torch.cat([p1[:1], p2[:1]], 1), 3).reshape(-1), 0)
    authors = -e(torch.cat([p1[:1], p1[:1]], 1), 3).mean() + temp + temp ** 2
    assert torch.isclose(Energy(e)(p1[:1], p2[:1], 3), authors)


# --- one step by hand ------------------------------------------------------------------------
def full_nce(f, tap, src, tgt, z):
    """NCE over every position of every layer at step 0 (order-free), by hand."""
    with torch.no_grad():
        keys, queries = tap(src, timestep=0, noise=z), tap(tgt, timestep=0, noise=z)
    return nce_over_every_position(f.mlps, keys, queries, src.shape[0])


def recording(objective):
    drawn = {}
    noise = objective.noise

    def record(step, name, n, *shape):
        drawn[name] = noise(step, name, n, *shape)
        return drawn[name]

    objective.noise = record
    return drawn


@pytest.mark.parametrize("fuse", [True, False])
def test_one_step_by_hand(tiny_recipe, fuse):
    trainer = Trainer(unsb_recipe(tiny_recipe, "objective.params.num_patches=100000"))
    m = trainer.model
    m.generator_pass.fuse = fuse  # the unfused path (batch-norm generators) gives the same numbers
    g, d, e, f = (copy.deepcopy(n) for n in (m.g, m.d, m.e, m.f))
    order = []
    update = trainer.update
    trainer.update = lambda phase, loss: (order.append(phase), update(phase, loss))
    drawn = recording(m)
    torch.manual_seed(0)  # then t = 4 of 0 .. 4: a rollout of four steps
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    terms = trainer.train_step(a, b)
    assert order == ["d", "e", "g"]
    t = drawn["z_roll_a"].shape[1]
    assert t == 4
    T, tau, times = 5, 0.01, schedule(5)
    with torch.no_grad():
        xs = {"a": a, "a2": a.flip(3), "b": b}  # the first step's second A batch: A mirrored
        for s in range(t):
            preds = {k: g(x, timestep=s, noise=drawn[f"z_roll_{k}"][:, s]) for k, x in xs.items()}
            delta, denom = times[s + 1] - times[s], times[-1] - times[s]
            inter, scale = delta / denom, delta * (1 - delta / denom)
            xs = {k: (1 - inter) * x + inter * preds[k] + math.sqrt(scale * tau) * drawn[f"eps_roll_{k}"][:, s]
                  for k, x in xs.items()}
        fake, fake2, idt = (g(xs[k], timestep=t, noise=drawn[f"z_{k}"]) for k in ("a", "a2", "b"))
        lsgan = F.mse_loss
        d_loss = 0.5 * (lsgan(d(b, timestep=t), torch.ones(1, 1, 6, 6)) + lsgan(d(fake, timestep=t), torch.zeros(1, 1, 6, 6)))
        p1, p2 = torch.cat([xs["a"], fake], 1), torch.cat([xs["a2"], fake2], 1)
        temp = torch.logsumexp(e(torch.cat([p1, p2], 1), timestep=t).reshape(-1), 0)
        e_loss = -e(torch.cat([p1, p1], 1), timestep=t).mean() + temp + temp ** 2
        # G's terms see D and E after their updates
        g_adv = lsgan(m.d(fake, timestep=t), torch.ones(1, 1, 6, 6))
        et_xy = m.e(torch.cat([p1, p1], 1), timestep=t).mean() - torch.logsumexp(
            m.e(torch.cat([p1, p2], 1), timestep=t).reshape(-1), 0)
        sb = -(T - t) / T * tau * et_xy + tau * ((xs["a"] - fake) ** 2).mean()
        tap = m.generator_pass.tap
        tap.generator = g
        nce, nce_idt = full_nce(f, tap, a, fake, drawn["z_nce"]), full_nce(f, tap, b, idt, drawn["z_nce_idt"])
        tap.generator = m.g
    for name, want in (("d", d_loss), ("e", e_loss), ("g_adv", g_adv), ("sb", sb), ("nce", nce), ("nce_idt", nce_idt)):
        assert torch.isclose(terms[name], want, atol=1e-5, rtol=1e-5), (name, terms[name], want)
    assert torch.isclose(terms["g_total"], g_adv + sb + 0.5 * (nce + nce_idt), atol=1e-5)
    assert torch.equal(terms["loss_e"], terms["e"]) and torch.equal(terms["loss_g"], terms["g_total"])
    for old, new in ((g, m.g), (d, m.d), (e, m.e), (f, m.f)):  # all four networks moved
        assert any(not torch.equal(p, q) for p, q in zip(old.parameters(), new.parameters()))
    assert torch.equal(m.previous_a, a)  # the next step's second A batch


# --- training: resume, bf16, compile ---------------------------------------------------------
@pytest.mark.slow
def test_resume_2_plus_2_is_4(tiny_recipe):
    full = train(unsb_recipe(tiny_recipe, out="full"))
    train(unsb_recipe(tiny_recipe, "train.max_steps=2", out="split"))
    resumed = train(unsb_recipe(tiny_recipe, out="split"), resume=True)
    assert resumed.step == full.step == 4
    a, b = (checkpoint.load(r.checkpoint) for r in (full, resumed))
    assert set(a["nets"]) == {"g", "d", "e", "f"} and set(a["optimizers"]) == {"g", "d", "e"}
    for net in a["nets"]:
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), (net, k)
    assert torch.equal(a["objective_state"]["previous_a"], b["objective_state"]["previous_a"])


@pytest.mark.slow
def test_compiles_and_trains_in_bf16(tiny_recipe):
    compiled = train(unsb_recipe(tiny_recipe, "train.compile=true", "train.compile_backend=aot_eager",
                                 "train.max_steps=1"))
    assert compiled.step == 1
    trainer = Trainer(unsb_recipe(tiny_recipe, "train.precision=bf16", out="bf16"))
    for _ in range(2):
        terms = trainer.train_step(torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1)
        assert all(torch.isfinite(v) for v in terms.values())


# --- the sampler is the one translator -------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from helpers import make_image_root, tiny_recipe

    tmp = tmp_path_factory.mktemp("unsb")
    # three steps keep the unrolled export small; translate, eval, tiling: the same code as for five
    return train(tiny_recipe(make_image_root(tmp / "d"), tmp / "run", *UNSB, "objective.params.num_timesteps=3"))


def smooth_image(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)


@pytest.mark.slow
def test_a_run_draws_its_figure_and_samples_with_every_step(run):
    state = checkpoint.load(run.checkpoint)
    assert state["objective"] == "unsb" and state["translators"] == {"a2b": {"net": "g", "in_channels": 3,
                                                                             "out_channels": 3}}
    grid = Image.open(run.out_dir / "samples" / "step_0000004.png")
    assert grid.width > 4 * 32  # real | three predictions
    assert (run.out_dir / "figure.png").is_file()


def test_translate_seed_same_output_other_seed_other(run, tmp_path, capsys):
    from unpaired.cli import main
    from unpaired.inference.translate import Translator

    smooth_image(40, 36).save(tmp_path / "in.png")
    outs = {}
    for label, extra in (("default", []), ("0", ["--seed", "0"]), ("1", ["--seed", "1"]), ("1b", ["--seed", "1"]),
                         ("2", ["--seed", "2"])):
        assert main(["translate", str(run.out_dir), str(tmp_path / "in.png"), "--out", str(tmp_path / label),
                     "--no-progress", "--device", "cpu", "--precision", "fp32", *extra]) == 0
        outs[label] = np.asarray(Image.open(tmp_path / label / "in.png")).astype(int)
    assert "seed 2" in capsys.readouterr().out
    assert (outs["default"] == outs["0"]).all()  # the recipe's train.seed
    assert (outs["1"] == outs["1b"]).all()
    assert np.abs(outs["1"] - outs["2"]).mean() > 1 and np.abs(outs["0"] - outs["1"]).mean() > 1
    # from Python: the same; an image's noise does not depend on its batch
    t = Translator.from_checkpoint(run.checkpoint, device="cpu", precision="fp32", seed=1, batch_size=2)
    assert (np.asarray(t(smooth_image(40, 36))).astype(int) == outs["1"]).all()
    batch = t.translate_batch([smooth_image(40, 36, seed=5), smooth_image(40, 36)])
    assert (np.asarray(batch[1]).astype(int) == outs["1"]).all()


def test_eval_and_video_run_the_sampler(run, tmp_path, capsys):
    import json

    from unpaired.cli import main
    from test_video import make_clip

    assert main(["eval", str(run.out_dir), "--extractor", "tiny", "--device", "cpu", "--out", str(tmp_path / "e1")]) == 0
    assert main(["eval", str(run.out_dir), "--extractor", "tiny", "--device", "cpu", "--out", str(tmp_path / "e2")]) == 0
    first, second = (json.loads((tmp_path / e / "metrics.json").read_text())["metrics"] for e in ("e1", "e2"))
    assert "kid_a2b" in first and "kid_b2a" not in first and first == second  # seeded: the same noise each time
    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    assert main(["translate", str(run.out_dir), str(clip), "--out", str(tmp_path / "out.mp4"), "--no-progress"]) == 0
    assert "translated 3 frame(s)" in capsys.readouterr().out


@pytest.mark.slow
def test_export_feeds_the_noise_and_matches_at_three_sizes(run, tmp_path):
    import importlib.util
    import json

    from unpaired.inference.export import export

    path, check = export(run.out_dir, fmt="pt2", out=tmp_path / "g.pt2")
    assert check.ok and check.max_error < 1e-4 and len(check.sizes) == 3
    program = torch.export.load(str(path))
    assert sum(s.kind.name == "USER_INPUT" for s in program.graph_signature.input_specs) == 3  # the image, z, eps
    if all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript")):
        import onnx

        path, check = export(run.out_dir, fmt="onnx", out=tmp_path / "g.onnx")
        assert check.ok and check.max_error < 1e-4
        model = onnx.load(str(path))
        assert [i.name for i in model.graph.input] == ["input", "z", "eps"]
        meta = {p.key: p.value for p in model.metadata_props}
        assert json.loads(meta["noise_inputs"]) == {"z": ["N", 3, 16], "eps": ["N", 2, 3, "H", "W"]}


def test_tiles_share_one_noise_field_and_each_steps_statistics(run):
    import contextlib

    from unpaired.inference import tiling
    from unpaired.inference.translate import Translator

    t = Translator.from_checkpoint(run.checkpoint, device="cpu", precision="fp32", tile=0)
    img = smooth_image(200, 152)
    whole = np.asarray(t(img)).astype(float)
    diff = np.abs(np.asarray(tiling.translate_tiled(t, img, 64)).astype(float) - whole)
    assert diff.mean() < 3 and diff.max() < 64, (diff.mean(), diff.max())
    # the first pass's statistics for every pass, or each tile its own noise: worse seams
    original = tiling.fixed_stats

    @contextlib.contextmanager
    def first_pass_only(generator, stats):
        with original(generator, {i: passes[:1] for i, passes in stats.items()}):
            yield

    try:
        tiling.fixed_stats = first_pass_only
        one_pass = np.abs(np.asarray(tiling.translate_tiled(t, img, 64)).astype(float) - whole).mean()
    finally:
        tiling.fixed_stats = original
    own = t.translate_tensor
    t.translate_tensor = lambda x, origin=(0, 0): own(x)  # every tile reads the field at (0, 0)
    own_noise = np.abs(np.asarray(tiling.translate_tiled(t, img, 64)).astype(float) - whole).mean()
    assert one_pass > 2 * diff.mean() and own_noise > 2 * diff.mean(), (one_pass, own_noise, diff.mean())


def test_the_noise_field_is_the_same_wherever_it_is_read():
    from unpaired.engine.noise import NoiseField

    class Module:
        noise_inputs = {"z": ("N", 2, 3), "eps": ("N", 2, 1, "H", "W")}

    field = NoiseField(Module(), seed=7)
    big = field.region(2, 0, 0, 150, 140)
    part = field.region(1, 60, 70, 50, 45)
    assert torch.equal(part["eps"][0], big["eps"][0, ..., 60:110, 70:115])
    assert torch.equal(part["z"][0], big["z"][1]) and torch.equal(big["eps"][0], big["eps"][1])
    other = NoiseField(Module(), seed=8).region(1, 0, 0, 150, 140)
    assert not torch.equal(other["eps"][0], big["eps"][0]) and not torch.equal(other["z"][0], big["z"][0])
    assert abs(float(big["eps"].std()) - 1) < 0.05


# --- conditioned networks --------------------------------------------------------------------
def test_unconditioned_networks_are_refused_at_recipe_time(tiny_recipe):
    # before any data is read (the data folder does not exist): both keys named with the value to set
    with pytest.raises(UnpairedError) as exc:
        Trainer(tiny_recipe("objective.name=unsb", "data.params.root=/nonexistent"))
    msg = str(exc.value)
    assert "generator.params.conditioning: objective 'unsb' needs a generator that takes timestep and noise" in msg
    assert "set 'generator.params.conditioning=[timestep, noise]'" in msg
    assert "set 'discriminator.params.conditioning=[timestep]'" in msg
    with pytest.raises(UnpairedError, match=r"generator.params.conditioning: 'time' is not one of timestep, noise"):
        Trainer(tiny_recipe("generator.params={ngf: 4, n_blocks: 1, conditioning: [time]}"))
    with pytest.raises(UnpairedError, match=r"objective.params.num_timesteps: 0 must be an integer >= 1"):
        Trainer(unsb_recipe(tiny_recipe, "objective.params.num_timesteps=0"))
    with pytest.raises(UnpairedError, match=r"objective.params.tau: nan must be a finite number >= 0"):
        Trainer(unsb_recipe(tiny_recipe, "objective.params.tau=.nan"))


Plain = plain_generator_class()


class Conditioned(Plain):
    """An outside generator that declares the conditions: a bias from the step and the noise."""

    conditions, noise_dim = ("timestep", "noise"), 6

    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels)
        self.style = nn.Linear(6, 8)

    def forward(self, x, timestep=None, noise=None):
        noise = x.new_zeros(x.shape[0], 6) if noise is None else noise
        h = self.body[0](x) + self.style(noise)[:, :, None, None] + 0.1 * (timestep or 0)
        return self.body[3](self.body[2](self.body[1](h)))


def test_an_outside_generator_lacking_the_conditions_is_refused_and_one_declaring_them_trains(tiny_recipe,
                                                                                               with_plugin):
    class Plugin:
        @unpaired.hookimpl
        def register_generators(self, register):
            register("plain_gen", Plain)
            register("conditioned_gen", Conditioned)

    with_plugin(Plugin(), "outside-generators")
    base = [*UNSB[:1], *UNSB[2:], "objective.params.nce_layers=[body.0, body.2]", "generator.params={}"]
    with pytest.raises(UnpairedError, match=r"generator.name: objective 'unsb' needs a generator that takes timestep "
                                            r"and noise, and generator 'plain_gen' takes none .*conditions"):
        Trainer(tiny_recipe(*base, "generator.name=plain_gen"))
    trainer = Trainer(tiny_recipe(*base, "generator.name=conditioned_gen"))
    terms = trainer.train_step(torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1)
    assert all(torch.isfinite(v) for v in terms.values())
    assert trainer.model.bridge.noise_inputs["z"] == ("N", 5, 6)


def test_the_augmentation_is_hooked_onto_d_and_never_onto_the_energy_network(tiny_recipe):
    # E judges (X_t, X_t+1) pairs stacked on the channels, not real against generated images:
    # augmenting it would mix four images' colours; D, the adversarial judge, is augmented
    from unpaired.engine.assemble import assemble

    for name in ("diffaugment", "ada"):
        assembly = assemble(unsb_recipe(tiny_recipe, f"augment.name={name}", "train.precision=fp32"), channels=(3, 3))
        obj = assembly.objective
        assert assembly.discriminators(augmented=True) == [obj.d]
        assert {id(n) for n in assembly.discriminators()} == {id(obj.d), id(obj.e)}
        assert len(obj.d._forward_pre_hooks) == 1 and not obj.e._forward_pre_hooks


def test_the_report_timeline_shows_what_translate_gives_and_leaves_torch_random_state_alone(run):
    # the report's columns are the run's translations at the recipe's seed, as `translate` by
    # default; translating them at a checkpoint of a live run must not move its random state
    from unpaired.data.tensors import to_tensor
    from unpaired.inference.translate import Translator
    from unpaired.report.timeline import Inputs, Timeline

    image = smooth_image(32, 32)
    timeline = Timeline(Inputs({"a2b": [("in.png", to_tensor(image, 3).unsqueeze(0))]}), "cpu", seed=0)
    before = torch.get_rng_state()
    columns, _ = timeline.columns(run.out_dir)
    assert torch.equal(torch.get_rng_state(), before)
    shown = np.asarray(columns[-1].images["a2b"][0]).astype(int)
    t = Translator.from_checkpoint(run.checkpoint, device="cpu", precision="fp32")
    assert np.abs(shown - np.asarray(t(image)).astype(int)).max() <= 1
