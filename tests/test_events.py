"""Training events: order, arguments, and built-in output plugins that can be switched off."""
import pytest
import torch

import unpaired
from unpaired import UnpairedError, hookimpl
from unpaired.engine.trainer import train


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def on_train_start(self, run):
        self.calls.append(("start", run.start_step, run.total_steps))
        assert run.out_dir.is_dir() and run.config.name == "forest_abstract"
        assert hasattr(run.model, "g_ab") and isinstance(run.device, torch.device)

    @hookimpl
    def on_step(self, step):
        self.calls.append(("step", step))

    @hookimpl
    def on_log(self, run, step, metrics):
        assert all(isinstance(v, float) or isinstance(v, int) for v in metrics.values())
        assert {"g_total", "d_a", "d_b", "cycle_a", "lr", "it_per_s", "epoch"} <= set(metrics)
        self.calls.append(("log", step))

    @hookimpl
    def on_sample(self, step, images):
        grid = images["grid"]
        assert grid.dim() == 3 and grid.shape[0] == 3 and 0 <= grid.min() and grid.max() <= 1
        real, fake, rec = images["a2b"]
        assert real.shape == fake.shape == rec.shape == (2, 3, 32, 32)
        self.calls.append(("sample", step))

    @hookimpl
    def on_checkpoint(self, step, path):
        assert path.is_file()
        self.calls.append(("checkpoint", step))

    @hookimpl
    def on_train_end(self, step, interrupted):
        self.calls.append(("end", step, interrupted))


@pytest.fixture
def recorder():
    rec = Recorder()
    unpaired.register_plugin(rec, name="recorder")
    yield rec
    unpaired.unregister_plugin("recorder")


@pytest.mark.slow
def test_events_fire_in_order_with_their_arguments(tiny_recipe, recorder):
    train(tiny_recipe("train.log_every=2"))
    assert recorder.calls == [
        ("start", 0, 4),
        ("step", 1), ("step", 2), ("log", 2), ("sample", 2), ("checkpoint", 2),
        ("step", 3), ("step", 4), ("log", 4), ("sample", 4), ("checkpoint", 4),
        ("end", 4, ""),
    ]


@pytest.mark.slow
def test_resumed_run_starts_at_its_step(tiny_recipe, recorder):
    train(tiny_recipe("train.max_steps=2"))
    recorder.calls.clear()
    train(tiny_recipe(), resume=True)
    assert recorder.calls[0] == ("start", 2, 4) and recorder.calls[-1] == ("end", 4, "")


@pytest.mark.slow
def test_disabling_builtin_output_plugins_removes_their_output(tiny_recipe, tmp_path):
    train(tiny_recipe("disable_plugins=[progress, metrics_csv, samples]"))
    run = tmp_path / "run"
    assert not (run / "metrics.csv").exists() and not (run / "samples").exists()
    assert (run / "checkpoints" / "latest.pt").is_file()  # checkpoints are the core's, not a plugin's
    train(tiny_recipe("disable_plugins=[progress]", out="run2"))
    assert (tmp_path / "run2" / "metrics.csv").is_file() and (tmp_path / "run2" / "samples").is_dir()


def test_disabling_an_unknown_plugin_is_an_error(tiny_recipe):
    with pytest.raises(UnpairedError, match="disable_plugins.*progres"):
        train(tiny_recipe("disable_plugins=[progres]"))
