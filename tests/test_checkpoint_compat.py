"""Checkpoints written by unpaired 0.1.0 (format 1, before objectives were plugins) still
translate, evaluate and resume: tests/fixtures/format1_*.pt were made by that version
(tests/fixtures/make_format1.py), in fp32, on another CPU.

Stored outputs are compared with a tolerance, never bit for bit: oneDNN picks other kernels on
other instruction sets, so fp32 results differ in the last bits from CPU to CPU (bit equality
holds within one machine: tests/test_reliability.py, tests/test_distributed.py). Measured here
against the fixtures: translations within 8e-7 (``ONEDNN_MAX_CPU_ISA=AVX2`` and ``=SSE41``), the
weights after two more training steps within 4e-8.
"""
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from unpaired import UnpairedError
from unpaired.store import checkpoint
from unpaired.inference.translate import Translator

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OLD = FIXTURES / "format1_cyclegan.pt"


def test_format1_checkpoint_loads_as_a_cyclegan_one():
    state = checkpoint.load(OLD)
    assert torch.load(OLD, weights_only=True)["format"] == 1
    assert state["format"] == checkpoint.FORMAT and state["objective"] == "cyclegan"
    assert set(state["translators"]) == {"a2b", "b2a"}
    assert set(state["objective_state"]["pools"]) == {"a", "b"} and "pools" not in state


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_format1_checkpoint_translates_as_0_1_0_did(direction):
    expected = torch.load(FIXTURES / "format1_cyclegan_outputs.pt", weights_only=True)
    t = Translator.from_checkpoint(OLD, direction=direction, device="cpu", precision="fp32")
    torch.testing.assert_close(t.translate_tensor(expected["input"]), expected[direction], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_format1_checkpoint_resumes_to_the_weights_0_1_0_reached(tmp_path):
    # the fixture's run: tiny nets on helpers.make_image_root's images, 2 of 4 steps done
    from helpers import make_image_root, tiny_recipe
    from unpaired.engine.trainer import train

    root = make_image_root(tmp_path / "data")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD, run / "checkpoints" / "latest.pt")
    result = train(tiny_recipe(root, run, "train.max_steps=4", "train.pool_size=2", "train.precision=fp32"),
                   resume=True)
    assert result.step == 4
    new = torch.load(result.checkpoint, weights_only=True)
    assert new["format"] == checkpoint.FORMAT
    want = torch.load(FIXTURES / "format1_cyclegan_step4.pt", weights_only=True)["nets"]
    before = torch.load(OLD, weights_only=True)["nets"]
    noise = normalised_biases(OLD)
    lr = 2e-4
    for net in want:
        for k in want[net]:
            if (net, k) in noise:  # no true gradient: Adam's steps follow rounding noise. With betas
                # (0.5, 0.999) a bias-corrected step t is at most lr * sqrt(sum a_i^2 / b_i) (Cauchy-Schwarz
                # over the moment weights): 1.13 lr at step 3, 1.23 lr at step 4
                assert (new["nets"][net][k] - before[net][k]).abs().max() <= 2.4 * lr, (net, k)
            else:
                torch.testing.assert_close(new["nets"][net][k], want[net][k], rtol=0, atol=1e-6, msg=(net, k))
    assert sum(1 for net in want for k in want[net] if (net, k) not in noise) >= 30  # every weight, the real biases


def normalised_biases(path):
    """{(network, key)} of biases that a norm layer right after them cancels: their gradient is
    0 in exact arithmetic, so what a step does to them is rounding noise, different on every CPU."""
    from unpaired.loading import get_registry
    from unpaired.engine.restore import checkpoint_recipe

    state = checkpoint.load(path)
    cfg = checkpoint_recipe(state)
    registry = get_registry()
    nets = {"g_ab": registry.create("generator", cfg.generator.name, dict(cfg.generator.params), in_channels=3,
                                    out_channels=3),
            "d_a": registry.create("discriminator", cfg.discriminator.name, dict(cfg.discriminator.params),
                                   in_channels=3)}
    nets["g_ba"], nets["d_b"] = nets["g_ab"], nets["d_a"]
    found = set()
    for net_name, net in nets.items():
        for prefix, module in net.named_modules():
            children = list(module.named_children())
            for (name, layer), (_, after) in zip(children, children[1:]):
                if getattr(layer, "bias", None) is not None and isinstance(after, (nn.InstanceNorm2d, nn.BatchNorm2d)):
                    found.add((net_name, f"{prefix}.{name}.bias".lstrip(".")))
    return found


def test_format1_checkpoint_evaluates(tmp_path, capsys):
    from helpers import make_image_root
    from unpaired import cli

    root = make_image_root(tmp_path / "data")
    code = cli.main(["eval", str(OLD), "--extractor", "tiny", "--device", "cpu", "--data", str(root),
                     "--out", str(tmp_path / "eval")])
    assert code == 0, capsys.readouterr()
    import json

    scores = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert {"kid_a2b", "kid_b2a", "cycle_l1_a", "cycle_l1_b"} <= set(scores)


def test_an_unknown_future_format_is_named(tmp_path):
    state = torch.load(OLD, weights_only=True)
    state["format"] = 99
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(UnpairedError, match="format 99, a newer unpaired may read it"):
        checkpoint.load(tmp_path / "future.pt")


# --- the format in one place (unpaired.store.format) ------------------------------------------
def test_the_format_reads_back_what_the_trainer_writes(finished_run):
    """latest.pt and a format-1 file read into the one typed definition and back unchanged
    (upgraded for format 1); a kept step is the same definition without the training state."""
    from unpaired.store.format import Checkpoint

    written = torch.load(finished_run / "checkpoints" / "latest.pt", weights_only=True)
    ck = Checkpoint.from_dict(written, "latest.pt")
    assert ck.resumable and ck.step == 2 and ck.objective == "cyclegan"
    assert ck.to_dict().keys() == written.keys()
    again = ck.to_dict()
    for key, value in written.items():
        assert key in again and (key == "nets" or again[key] == value), key
    old = Checkpoint.from_dict(torch.load(OLD, weights_only=True), OLD)
    assert old.to_dict()["format"] == checkpoint.FORMAT and set(old.translators) == {"a2b", "b2a"}
    kept = Checkpoint.from_dict({**written, "made_by": {"script": "x"}}, "x")
    kept.optimizers = kept.schedule = kept.scaler = kept.best = kept.rng = kept.objective_state = None
    assert not kept.resumable and "optimizers" not in kept.to_dict() and kept.to_dict()["made_by"] == {"script": "x"}


@pytest.mark.parametrize("change, words", [
    (lambda s: s.pop("translators"), "has no 'translators'"),
    (lambda s: s.update(translators={"x2y": {"net": "g_ab", "in_channels": 3, "out_channels": 3}}), "'x2y'"),
    (lambda s: s["translators"]["a2b"].update(in_channels=1000), "does not name two channel counts"),
    (lambda s: s.update(channels=[3]), "'channels'"),
])
def test_the_format_names_what_is_damaged(finished_run, change, words):
    from unpaired.store.format import Checkpoint

    state = torch.load(finished_run / "checkpoints" / "latest.pt", weights_only=True)
    change(state)
    with pytest.raises(UnpairedError, match=words):
        Checkpoint.from_dict(state, "damaged.pt")
