"""Precision, batch size, fused passes and torch.compile: same objective, resumable."""
import pytest
import torch

import unpaired
from unpaired.engine.trainer import Trainer, train


def cpu_supports_bf16_autocast():
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.functional.conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3))
        return True
    except RuntimeError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precision_modes_give_finite_losses_and_resume(tiny_recipe, precision):
    if precision == "bf16" and not cpu_supports_bf16_autocast():
        pytest.skip("no bf16 autocast on this CPU")
    common = (f"train.precision={precision}", "data.batch_size=4", "objective.params.pool_size=3")
    trainer = Trainer(tiny_recipe(*common, "train.max_steps=1"))
    assert trainer.amp_dtype == (torch.bfloat16 if precision == "bf16" else None)
    result = trainer.run()
    terms = trainer.train_step(torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1)
    assert all(torch.isfinite(v) for v in terms.values())
    assert trainer.model.pool_a.images.dtype == torch.float32  # the pool stores full precision
    resumed = train(tiny_recipe(*common, "train.max_steps=2"), resume=True)
    assert resumed.step == 2 and result.step == 1


def test_fp16_needs_cuda(tiny_recipe):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(unpaired.UnpairedError, match="fp16"):
        Trainer(tiny_recipe("train.precision=fp16"))


def test_fused_generator_passes_give_the_same_losses(tiny_recipe):
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses = {}
    for fuse in ("true", "false"):
        trainer = Trainer(tiny_recipe(f"objective.params.fuse_passes={fuse}", out=f"run_{fuse}"))
        assert trainer.model.g.fuse is (fuse == "true")
        with torch.no_grad():
            losses[fuse] = trainer.model.generator_loss(a, b)[1]
    for k in losses["true"]:
        assert torch.allclose(losses["true"][k], losses["false"][k], atol=1e-5), k


def test_fusion_is_off_by_default_for_batch_norm_generators(tiny_recipe):
    trainer = Trainer(tiny_recipe("generator.params={ngf: 4, n_blocks: 1, norm: batch}"))
    assert trainer.model.g.fuse is False
    assert Trainer(tiny_recipe(out="other")).model.g.fuse is True


@pytest.mark.slow
def test_compiled_and_eager_generators_agree():
    torch.manual_seed(0)
    g = unpaired.get_registry().create("generator", "resnet", in_channels=3, out_channels=3, ngf=4, n_blocks=1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        eager = g(x)
        g.compile()
        compiled = g(x)
    assert torch.allclose(eager, compiled, atol=1e-5)
    assert list(g.state_dict()) == [k for k in g.state_dict() if not k.startswith("_orig_mod")]


@pytest.mark.slow
def test_compiled_training_keeps_the_checkpoint_format(tiny_recipe):
    # aot_eager traces forward and backward like inductor but generates no code (fast in tests)
    result = train(tiny_recipe("train.compile=true", "train.compile_backend=aot_eager", "train.max_steps=1"))
    state = torch.load(result.checkpoint, weights_only=True)
    eager = train(tiny_recipe("train.max_steps=1", out="eager"))
    assert set(state["nets"]["g_ab"]) == set(torch.load(eager.checkpoint, weights_only=True)["nets"]["g_ab"])


def test_activation_checkpointing_gives_the_same_gradients():
    reg = unpaired.get_registry()
    torch.manual_seed(0)
    plain = reg.create("generator", "resnet", in_channels=3, out_channels=3, ngf=4, n_blocks=2)
    ckpt = reg.create("generator", "resnet", in_channels=3, out_channels=3, ngf=4, n_blocks=2, checkpoint_blocks=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    plain(x).square().mean().backward()
    ckpt(x).square().mean().backward()
    for p, q in zip(plain.parameters(), ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6)
