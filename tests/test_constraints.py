"""Labels beside images (unpaired.data.labels, image_folder) and constraints (unpaired.engine.constraints,
plugins/constraints.py): labels follow their image through every transform, a bad label is named,
each built-in constraint computes what it says, and a run with constraints trains, checkpoints
and resumes exactly."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from unpaired import UnpairedError
from unpaired.api import get_registry
from unpaired.engine.trainer import Trainer, train

from helpers import stripes_root

FP32 = "train.precision=fp32"
SMALL_SEGMENTER = "{network: {name: resnet, params: {ngf: 4, n_blocks: 1}}}"


def dataset(root, **params):
    return get_registry().create("dataset", "image_folder", {"root": str(root), "load_size": 36, "crop_size": 32,
                                                             **params})


# -- labels ------------------------------------------------------------------------------------
def test_labels_follow_their_image_through_resize_crop_and_flip(tmp_path):
    ds = dataset(stripes_root(tmp_path / "d"))
    assert ds.label_classes == {"A": 3} and "labels of 3 classes" in ds.describe()
    for seed in range(12):
        torch.manual_seed(seed)
        item = ds[seed % len(ds)]
        image, label = item["A"], item["A_label"]
        assert label.shape == (32, 32) and label.dtype == torch.int64 and "B_label" not in item
        strongest = image.argmax(0)  # the colour channel of each pixel: its stripe's class
        clear = image.max(0).values - image.median(0).values > 1.0  # away from the blended stripe edges
        assert clear.float().mean() > 0.5 and torch.equal(strongest[clear], label[clear]), seed
    held_out = dataset(tmp_path / "d", split="test")[1]
    clear = held_out["A"].max(0).values - held_out["A"].median(0).values > 1.0
    assert torch.equal(held_out["A"].argmax(0)[clear], held_out["A_label"][clear])


def test_a_missing_label_a_wrong_size_and_a_value_out_of_range_are_named(tmp_path):
    root = stripes_root(tmp_path / "d")
    (root / "trainA_label" / "01.png").unlink()
    with pytest.raises(UnpairedError, match=r"data.params.labels: 1 of 4 images have no label in .*trainA_label.*"
                                            r"01.png"):
        dataset(root)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "trainA_label" / "01.png")
    with pytest.raises(UnpairedError, match=r"label .*01.png: 10 x 10 pixels, its image .* is 48 x 40"):
        dataset(root)
    Image.fromarray(np.full((40, 48), 7, np.uint8)).save(root / "trainA_label" / "01.png")
    with pytest.raises(UnpairedError, match=r"label .*01.png: value 7 is not a class of data.params.label_classes=3"):
        dataset(root, label_classes=3)
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(root / "trainA_label" / "01.png")
    with pytest.raises(UnpairedError, match="mode RGB is not a label"):
        dataset(root)
    assert dataset(root, labels=False).label_classes == {}


def test_a_0_255_mask_is_two_classes(tmp_path):
    root = stripes_root(tmp_path / "d")
    for p in (root / "trainA_label").iterdir():
        Image.fromarray(np.where(np.asarray(Image.open(p)) == 1, 255, 0).astype(np.uint8)).save(p)
    ds = dataset(root)
    assert ds.label_classes == {"A": 2}
    assert set(ds[0]["A_label"].unique().tolist()) <= {0, 1}


def test_data_check_counts_the_labels(tmp_path):
    from unpaired.data.check import check_data

    text = check_data(stripes_root(tmp_path / "d")).text(200)
    assert "3 classes (0:" in text and "labels" in text


# -- the built-in constraints --------------------------------------------------------------------
def test_mask_keep_is_the_mean_difference_where_the_label_is_the_kept_class():
    from unpaired.plugins.constraints import MaskKeep

    real, translated = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    translated[0, :, 0, 0] = 5.0  # changed inside the mask: free
    labels = torch.tensor([[[1, 0], [0, 0]]])
    assert float(MaskKeep(3, 2).generator_loss(real, translated, labels)) == pytest.approx(1.0)


def test_edges_are_free_to_recolour_and_cost_a_lost_line():
    from unpaired.plugins.constraints import Edges

    x = torch.full((1, 3, 16, 16), -0.5)
    x[:, :, :, 7] = 0.5  # a one-pixel line
    edges = Edges(3, None)
    assert float(edges.generator_loss(x, 0.5 * x + 0.2, None)) < 1e-3  # contrast and palette: free (but the sqrt epsilon)
    lost = torch.full_like(x, -0.5)
    lost[:, :, 3, 3] = 0.5  # the line gone, a dot invented
    assert float(edges.generator_loss(x, lost, None)) > 0.5


def test_semantic_trains_its_own_network_and_penalises_a_translation_that_loses_the_classes():
    from unpaired.plugins.constraints import Semantic

    torch.manual_seed(0)
    c = Semantic(3, 3, network={"name": "resnet", "params": {"ngf": 4, "n_blocks": 1}})
    colours = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1]])
    labels = torch.randint(0, 3, (4, 16, 16))
    real = colours[labels].permute(0, 3, 1, 2)
    opt = torch.optim.Adam(c.f.parameters(), lr=1e-2)
    start = float(c.train_loss(real, labels))
    for _ in range(150):
        opt.zero_grad()
        c.train_loss(real, labels).backward()
        opt.step()
    kept = float(c.generator_loss(real, real, labels))
    lost = float(c.generator_loss(real, torch.zeros_like(real), labels))
    assert kept < start / 4 and kept < lost / 4, (start, kept, lost)


# -- constraints in training --------------------------------------------------------------------
@pytest.mark.slow
def test_a_run_with_constraints_logs_their_terms_trains_the_segmenter_and_resumes_exactly(tmp_path):
    from helpers import tiny_recipe

    root = stripes_root(tmp_path / "d")
    constraints = (f"constraints=[{{name: semantic, params: {SMALL_SEGMENTER}}}, {{name: mask_keep, weight: 2}}, "
                   "{name: edges}]")
    make = lambda *o, out: tiny_recipe(root, tmp_path / out, FP32, constraints, *o)  # noqa: E731
    trainer = Trainer(make(out="full"))
    segmenter = trainer.constraints.networks()["constraint_0.segmenter"]
    before = [p.detach().clone() for p in segmenter.parameters()]
    full = trainer.run()
    assert any(not torch.equal(a, b) for a, b in zip(before, segmenter.parameters()))
    rows = list(csv.DictReader(open(tmp_path / "full" / "metrics.csv")))
    for key in ("constraint_semantic", "constraint_mask_keep", "constraint_edges", "loss_constraint_0"):
        assert all(float(r[key]) >= 0 for r in rows), key
    state = torch.load(full.checkpoint, weights_only=True)
    assert "constraint_0.segmenter" in state["nets"] and "constraint_0" in state["optimizers"]
    train(make("train.max_steps=2", out="split"))
    split = torch.load(train(make(out="split"), resume=True).checkpoint, weights_only=True)
    for net in state["nets"]:
        assert all(torch.equal(v, split["nets"][net][k]) for k, v in state["nets"][net].items()), net


def test_constraints_are_checked_against_the_recipe_the_objective_and_the_data(tiny_recipe, tmp_path):
    with pytest.raises(UnpairedError, match=r"unknown constraint 'semantics' \(recipe key constraints.0.name\). Did "
                                            r"you mean 'semantic'"):
        Trainer(tiny_recipe("constraints=[{name: semantics}]"))
    with pytest.raises(UnpairedError, match=r"constraints.0: constraint 'semantic' reads the labels of domain A, "
                                            r"and the data has none"):
        Trainer(tiny_recipe(f"constraints=[{{name: semantic, params: {SMALL_SEGMENTER}}}]"))
    with pytest.raises(UnpairedError, match=r"constraints.0: constraint 'edges' keeps the translation of domain B, "
                                            r"and objective 'cut' translates a2b only"):
        Trainer(tiny_recipe("objective.name=cut", "objective.params={nce_layers: [input, down1], num_patches: 8}",
                            "constraints=[{name: edges, params: {domain: B}}]"))


@pytest.mark.slow
def test_a_constraints_term_reaches_the_generators_update(tiny_recipe):
    weights = {}
    for w in (0.0, 1.0):
        result = train(tiny_recipe(FP32, f"constraints=[{{name: edges, weight: {w}}}]", "train.max_steps=1",
                                   out=f"w{w}"))
        weights[w] = torch.load(result.checkpoint, weights_only=True)["nets"]
    assert any(not torch.equal(weights[0.0]["g_ab"][k], weights[1.0]["g_ab"][k]) for k in weights[0.0]["g_ab"])
    # the term is of the a2b translation: the b2a generator's first update is the same to the bit
    assert all(torch.equal(weights[0.0]["g_ba"][k], weights[1.0]["g_ba"][k]) for k in weights[0.0]["g_ba"])


def test_eval_scores_the_per_class_agreement_of_the_segmenter_on_the_translations():
    from unpaired.evaluation.evaluate import Evaluator

    class Labelled(torch.utils.data.Dataset):  # A: a class per stripe, shown as the red channel's level
        def __len__(self):
            return 4

        def __getitem__(self, i):
            label = torch.arange(16).div(8, rounding_mode="floor").repeat(16, 1)  # two classes, left | right
            a = torch.zeros(3, 16, 16)
            a[0] = label.float() * 2 - 1
            return {"A": a, "B": a.clone(), "A_label": label}

    def segment(images):  # reads the class from the red channel, as a trained f_s would
        red = images[:, 0]
        return torch.stack([-red, red], 1)

    class OneSided(torch.nn.Module):  # what the Evaluator scores: a model with its translators
        translators = {"a2b": "g"}

        def __init__(self, g):
            super().__init__()
            self.g = g

        def translator(self, direction):
            return self.g

    found = Evaluator(Labelled(), extractor="tiny", max_images=4, segmenter=segment)(OneSided(torch.nn.Identity()))
    assert found["miou_a2b"] == pytest.approx(1.0) and found["iou_a2b_0"] == pytest.approx(1.0)

    class Lose(torch.nn.Module):  # a translation that loses the right stripe: class 1 never found
        def forward(self, x):
            return torch.full_like(x, -1.0)

    lost = Evaluator(Labelled(), extractor="tiny", max_images=4, segmenter=segment)(OneSided(Lose()))
    assert lost["iou_a2b_1"] == 0.0 and lost["iou_a2b_0"] == pytest.approx(0.5) and lost["miou_a2b"] == 0.25


@pytest.mark.slow
def test_unpaired_eval_reports_content_kept_for_a_run_with_a_semantic_constraint(tmp_path, capsys):
    import json

    from helpers import tiny_recipe
    from unpaired.cli import main

    root = stripes_root(tmp_path / "d")
    train(tiny_recipe(root, tmp_path / "run", FP32, f"constraints=[{{name: semantic, params: {SMALL_SEGMENTER}}}]"))
    assert main(["eval", str(tmp_path / "run"), "--extractor", "tiny", "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert 0 <= metrics["miou_a2b"] <= 1 and {"iou_a2b_0", "iou_a2b_1", "iou_a2b_2"} <= set(metrics)
    assert "content kept (A->B" in capsys.readouterr().out


def test_a_bad_constraints_override_names_the_key():
    from helpers import RECIPE
    from unpaired.recipe.config import load_recipe

    with pytest.raises(UnpairedError, match=r"key wieght: Key 'wieght' not in 'ConstraintChoice'"):
        load_recipe(RECIPE, ["constraints=[{name: edges, wieght: 2}]"])
    with pytest.raises(UnpairedError, match=r"missing value for constraints\[0\].name"):
        load_recipe(RECIPE, ["constraints=[{weight: 2}]"])
    with pytest.raises(UnpairedError, match=r"constraints.0.weight: -1.0 must be a finite number >= 0"):
        load_recipe(RECIPE, ["constraints=[{name: edges, weight: -1}]"])


def test_a_checkpoint_without_the_constraints_network_is_named():
    from omegaconf import OmegaConf

    from unpaired.engine.constraints import Constraints

    cfg = OmegaConf.create({"objective": {"name": "x"}, "constraints": [
        {"name": "semantic", "weight": 1.0,
         "params": {"network": {"name": "resnet", "params": {"ngf": 4, "n_blocks": 1}}}}]})
    model = type("Model", (), {"translators": {"a2b": "g"}})()
    constraints = Constraints(cfg, get_registry(), model, (3, 3), {"A": 3})
    with pytest.raises(UnpairedError, match=r"checkpoint run.pt holds no constraint_0.segmenter"):
        constraints.load({"g": {}}, "run.pt")
