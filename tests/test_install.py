"""A broken install is named in one line: a torchvision built for another torch (what pip leaves
when the CPU-only index is not reachable) stops only the command that needs torchvision, with the
pair to reinstall; `unpaired plugins`, `--help` and training never import it."""
import subprocess
import sys

import pytest

from unpaired.evaluation.vision import matching_torchvision, mismatch_message

BROKEN = 'raise RuntimeError("operator torchvision::nms does not exist")\n'


@pytest.fixture
def broken_torchvision(tmp_path):
    """An environment whose `import torchvision` fails as a mismatched build does."""
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "__init__.py").write_text(BROKEN)
    import os

    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}


def run(env, *args):
    return subprocess.run([sys.executable, "-m", "unpaired", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_plugins_and_help_work_whatever_torchvision_does(broken_torchvision):
    for args in (("--help",), ("run", "--help"), ("plugins",)):
        out = run(broken_torchvision, *args)
        assert out.returncode == 0, (args, out.stderr[-2000:])
        assert "Traceback" not in out.stderr
    assert "inception" in run(broken_torchvision, "plugins").stdout  # listed, built only when used


@pytest.mark.slow
def test_what_needs_torchvision_says_which_pair_to_install(broken_torchvision):
    code = ("from unpaired import UnpairedError, get_registry\n"
            "try:\n    get_registry().create('feature_extractor', 'inception', load_weights=False)\n"
            "except UnpairedError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], env=broken_torchvision, capture_output=True, text=True,
                         timeout=120)
    import torch

    want = matching_torchvision(torch.__version__)
    assert "does not match torch" in out.stdout and f"torchvision=={want}" in out.stdout, out.stdout + out.stderr
    assert "operator torchvision::nms does not exist" in out.stdout and "Traceback" not in out.stderr


@pytest.mark.slow
def test_training_and_translation_do_not_import_torchvision():
    code = ("import sys, unpaired, unpaired.engine.trainer, unpaired.inference.translate, unpaired.cli\n"
            "unpaired.get_registry()\nprint('torchvision' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("torch_version, vision", [("2.14.1", "0.29.1"), ("2.13.0+cpu", "0.28.0"),
                                                   ("2.5.1+cu121", "0.20.1"), ("2.2", "0.17.0"), ("1.13.1", None)])
def test_the_matching_torchvision(torch_version, vision):
    assert matching_torchvision(torch_version) == vision


def test_a_missing_torchvision_is_named(monkeypatch):
    import importlib.metadata as md

    def absent(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "version", absent)
    assert mismatch_message(ImportError("No module named 'torchvision'")).startswith("torchvision is not installed")
