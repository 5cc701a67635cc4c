"""The registry and plugin loading: built-in fidelity, run-time plugins, entry points,
name clashes, unknown names and bad params."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import unpaired
from unpaired import UnpairedError, hookimpl

REG = unpaired.get_registry()


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("blocks,count", [(9, 11_378_179), (6, 7_837_699)])
def test_resnet_parameter_count_matches_reference(blocks, count):
    g = REG.create("generator", "resnet", in_channels=3, out_channels=3, ngf=64, n_blocks=blocks)
    assert n_params(g) == count


def test_resnet_layout_matches_reference():
    g = REG.create("generator", "resnet", in_channels=3, out_channels=3, n_blocks=1)
    mods = [m for m in g.modules() if not isinstance(m, (nn.Sequential,)) and m is not g]
    assert isinstance(mods[0], nn.ReflectionPad2d) and mods[0].padding == (3, 3, 3, 3)
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(7, 7), (3, 3), (3, 3), (3, 3), (3, 3), (7, 7)]
    assert [c.stride for c in convs[1:3]] == [(2, 2), (2, 2)]
    ups = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(u.in_channels, u.out_channels, u.output_padding) for u in ups] == [(256, 128, (1, 1)), (128, 64, (1, 1))]
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(not n.affine and not n.track_running_stats for n in norms)
    assert isinstance(list(g.modules())[-1], nn.Tanh)
    assert not any(isinstance(m, nn.Dropout) for m in g.modules())


def test_patchgan_matches_reference():
    d = REG.create("discriminator", "patchgan", in_channels=3)
    assert n_params(d) == 2_764_737
    assert d(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (3, 64, 2), (64, 128, 2), (128, 256, 2), (256, 512, 1), (512, 1, 1)]


def test_names_and_create():
    assert {"resnet"} <= set(REG.names("generator"))
    assert {"bce", "lsgan", "l1"} <= set(REG.names("loss"))
    with pytest.raises(UnpairedError, match="unknown kind"):
        REG.names("optimizer")


class RuntimePlugin:
    @hookimpl
    def register_generators(self, register):
        register("identity_gen", lambda in_channels, out_channels, scale=1.0: nn.Conv2d(in_channels, out_channels, 1),
                 help="a 1x1 conv")


def test_plugin_registered_at_run_time():
    name = unpaired.register_plugin(RuntimePlugin(), name="runtime-test")
    try:
        reg = unpaired.get_registry()
        assert "identity_gen" in reg.names("generator")
        g = reg.create("generator", "identity_gen", in_channels=3, out_channels=1, scale=2.0)
        assert g(torch.zeros(1, 3, 8, 8)).shape == (1, 1, 8, 8)
        assert reg.entry("generator", "identity_gen").plugin.name == "runtime-test"
    finally:
        unpaired.unregister_plugin(name)
    assert "identity_gen" not in unpaired.get_registry().names("generator")


class ClashingPlugin:
    @hookimpl
    def register_losses(self, register):
        register("l1", lambda: None)


def test_duplicate_name_is_an_error_naming_both_plugins():
    unpaired.register_plugin(ClashingPlugin(), name="clasher")
    try:
        with pytest.raises(UnpairedError) as err:
            unpaired.get_registry().create("loss", "l1")
        msg = str(err.value)
        assert "unpaired.plugins.losses" in msg and "clasher" in msg
        # the rest of the registry still works
        assert unpaired.get_registry().create("loss", "bce") is not None
    finally:
        unpaired.unregister_plugin("clasher")
    assert unpaired.get_registry().create("loss", "l1") is not None


class MisspelledHook:
    @hookimpl
    def register_generator(self, register):  # missing "s"
        pass


def test_misspelled_hook_is_an_error():
    with pytest.raises(UnpairedError, match="register_generator"):
        unpaired.register_plugin(MisspelledHook(), name="misspelled")
    assert "misspelled" not in [p.name for p in unpaired.get_registry().plugins]


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnpairedError) as err:
        REG.entry("generator", "resnt", key="generator.name")
    msg = str(err.value)
    assert "generator.name" in msg and "'resnet'" in msg and "Did you mean" in msg


def test_bad_params_are_named():
    with pytest.raises(UnpairedError) as err:
        REG.create("generator", "resnet", in_channels=3, out_channels=3, n_block=3)
    assert "n_block" in str(err.value) and "n_blocks" in str(err.value)
    with pytest.raises(UnpairedError, match="set by the engine"):
        REG.create("generator", "resnet", {"in_channels": 3}, key="generator", in_channels=3, out_channels=3)
    with pytest.raises(UnpairedError, match=r"generator.params.n_block: .* Did you mean 'n_blocks'"):
        REG.create("generator", "resnet", {"n_block": 3}, key="generator", in_channels=3, out_channels=3)


def test_create_takes_a_recipe_params_dict_and_keywords_alike():
    torch.manual_seed(0)
    a = REG.create("generator", "resnet", {"ngf": 8, "n_blocks": 1}, key="generator", in_channels=3, out_channels=3)
    torch.manual_seed(0)
    b = REG.create("generator", "resnet", in_channels=3, out_channels=3, ngf=8, n_blocks=1)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    with pytest.raises(UnpairedError, match=r"data.params.roots: dataset 'image_folder' .* has no parameter "
                                             r"'roots'. Did you mean 'root'\?"):
        REG.check_params("dataset", "image_folder", {"roots": "x"}, key="data")


ENTRY_POINT_PLUGIN = '''
import torch
from torch import nn
from unpaired import hookimpl

class Tiny(nn.Module):
    def __init__(self, cin, cout, width):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, cout, 3, padding=1), nn.Tanh())
    def forward(self, x):
        return self.net(x)

@hookimpl
def register_generators(register):
    register("tinygen", lambda in_channels, out_channels, width=4: Tiny(in_channels, out_channels, width), help="tiny")
'''


def make_distribution(site, dist, module, source, ep_name=None):
    """A real installed distribution on ``site``: module + .dist-info with an entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[unpaired]\n{ep_name or dist} = {module}\n")


def run_cli(args, site, cwd):
    env = dict(os.environ, PYTHONPATH=str(site), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "unpaired", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_third_party_plugin_found_by_entry_point_and_used_by_recipe(tmp_path, image_root):
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "unpaired_tinygen", "tinygen_plugin", ENTRY_POINT_PLUGIN)
    make_distribution(site, "broken_plugin", "broken_mod", "raise ImportError('missing dependency xyz')\n")
    listing = run_cli(["plugins"], site, tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "unpaired_tinygen 1.2.3" in listing.stdout and "tinygen" in listing.stdout
    assert "broken_plugin" in listing.stdout and "missing dependency xyz" in listing.stdout
    from helpers import RECIPE, TINY

    run = run_cli(["run", str(RECIPE), *TINY, f"data.params.root={image_root}", "out_dir=run",
                   "generator.name=tinygen", "generator.params={width: 3}", "train.max_steps=2"], site, tmp_path)
    assert run.returncode == 0, run.stderr
    state = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert state["plugins"]["generator"]["dist"] == "unpaired_tinygen"
    assert state["plugins"]["generator"]["version"] == "1.2.3"
    assert state["nets"]["g_ab"]["net.0.weight"].shape == (3, 3, 3, 3)


def test_a_blocked_plugin_name_is_refused_not_registered_as_none():
    from unpaired.loading import plugin_manager, register_plugin

    plugin_manager().set_blocked("blocked-for-this-test")
    with pytest.raises(UnpairedError, match="'blocked-for-this-test': its name is blocked"):
        register_plugin(object(), name="blocked-for-this-test")
