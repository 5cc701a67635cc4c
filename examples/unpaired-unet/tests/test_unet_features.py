"""The U-Net's encoder features by name (features(x, layers)), and CUT training on them."""
import pytest
import torch

from unpaired import UnpairedError
from unpaired.engine.trainer import Trainer, train

from unpaired_unet.unet import unet


def test_features_are_the_encoder_activations_in_the_order_asked():
    torch.manual_seed(0)
    g = unet(3, 3, ngf=4, num_downs=4)
    assert g.feature_names == ("input", "down1", "down2", "down3", "down4")
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    seen = {}
    for k, down in enumerate(g.downs):  # what the full pass computes (copied before the in-place ReLUs)
        down.register_forward_hook(lambda m, i, out, k=k: seen.__setitem__(f"down{k + 1}", out.clone()))
    g(x)
    feats = g.features(x, ["down3", "input", "down1"])
    assert [tuple(f.shape) for f in feats] == [(2, 16, 4, 6), (2, 3, 32, 48), (2, 4, 16, 24)]
    assert torch.equal(feats[1], x)
    assert torch.allclose(feats[0], seen["down3"]) and torch.allclose(feats[2], seen["down1"])
    # a shallower request gives the same down1 (no later in-place step changes it)
    assert torch.allclose(g.features(x, ["down1"])[0], seen["down1"])
    assert torch.equal(x, feats[1])  # the input is left alone


def test_features_need_only_the_depth_asked():
    g = unet(3, 3, ngf=4, num_downs=8)  # forward needs multiples of 256; down2 only needs 4 px
    (f,) = g.features(torch.zeros(1, 3, 64, 64), ["down2"])
    assert f.shape == (1, 8, 16, 16)
    with pytest.raises(UnpairedError, match="too small for feature layer down8"):
        g.features(torch.zeros(1, 3, 64, 64), ["down8"])


def test_unknown_feature_names_list_the_layers():
    g = unet(3, 3, ngf=4, num_downs=3)
    with pytest.raises(UnpairedError, match=r"unet has no feature layer 'block1', 'down4'; "
                                            r"its layers: input, down1, down2, down3$"):
        g.features(torch.zeros(1, 3, 32, 32), ["down1", "block1", "down4"])


CUT = ["objective.name=cut", "objective.params={nce_layers: [input, down1, down2, down3], num_patches: 16}"]


def test_cut_trains_on_unet_features(tiny_recipe, tmp_path):
    result = train(tiny_recipe(*CUT))
    assert result.step == 2
    state = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert state["objective"] == "cut" and set(state["translators"]) == {"a2b"}
    # F's MLPs were sized from the U-Net's named layers: 3, ngf, 2 ngf, 4 ngf channels
    assert [state["nets"]["f"][f"mlps.{k}.0.weight"].shape[1] for k in range(4)] == [3, 4, 8, 16]


def test_cut_default_layers_on_a_unet_name_the_fix(tiny_recipe):
    with pytest.raises(UnpairedError, match=r"nce_layers \(objective 'cut'\): unet has no feature layer 'block1', 'block5'; "
                                            r"its layers: input, down1, down2, down3"):
        Trainer(tiny_recipe("objective.name=cut"))
