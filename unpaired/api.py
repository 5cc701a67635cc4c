"""The plugin API: everything a plugin imports, and the only module it imports from.

pytest's rule, ours too: a pytest plugin imports ``pytest`` and nothing private. A plugin of
unpaired, built in (``plugins/``) or shipped as a package, imports ``unpaired.api``::

    from unpaired.api import hookimpl, Objective, ADVERSARIAL, number, UnpairedError

The hooks themselves (what each ``register_*`` and event hook receives and must return) are
specified in :mod:`unpaired.hookspecs`; their docstrings are the contract. CI checks that the
built-ins and the example package import nothing else of unpaired (import-linter, contracts in
pyproject.toml).

**Versions.** :data:`API_VERSION` is (major, minor): a minor version adds names, a major one may
remove or change them. A package that needs a name added in 1.1 checks
``unpaired.api.API_VERSION >= (1, 1)``.

**Deprecation.** A name leaving the API stays importable for one minor version, with a
DeprecationWarning naming its replacement (:data:`DEPRECATED`), and CHANGELOG.md lists it under
"Plugin API"; it is removed in the version after.

Why a module of its own rather than the top-level ``unpaired`` namespace: ``import unpaired``
stays light (the command line starts without loading torch), one file lists the whole surface,
and a plugin's imports show at a glance that it keeps to it.
"""
from __future__ import annotations

import warnings

from .engine.conditions import CONDITIONS, NOISE, TIMESTEP
from .engine.conditions import parse as parse_conditions
from .console import make_console, printable, shell_command
from .data.download import DATASETS
from .data.held_out import eager, held_out_items, item_image, item_name, spread
from .data.images import IMAGE_EXTENSIONS, find_images, load_image, scan_folder, skipped_summary, usable_problem
from .data.labels import Labels, label_folder, read_label, scan_labels
from .data.tensors import MIN_SIDE, SIZE_MULTIPLE, from_uint8, pad_to_multiple, size_multiple, to_image, to_tensor
from .errors import UnpairedError, flag, number, one_of, quoted
from .evaluation.features import builtin_extractors
from .store.files import atomic_open, atomic_path, open_append, refuse_link, save_image, write_bytes, write_text
from .hookspecs import hookimpl
from .loading import get_registry, load_plugin_file, register_plugin, unregister_plugin
from .engine.noise import draw as draw_noise
from .engine.objective import ADVERSARIAL, RECONSTRUCTION, Adversarial, Objective, Parts
from .engine.phases import Step
from .plugins.pool import ImagePool
from .report import Timeline, held_out_inputs, shown_note, write_report
from .testing import (check_augmentation, check_backbone, check_constraint, check_dataset, check_discriminator,
                      check_feature_extractor, check_generator, check_loss, check_objective)

# 1.1: labels (Labels, label_folder, read_label, scan_labels), check_constraint, check_backbone; the
# register_constraints and register_backbones hooks
API_VERSION = (1, 1)

# names that left the API: {old name: (replacement, the version that removes it)}
DEPRECATED: dict[str, tuple[str, str]] = {}


def __getattr__(name: str):
    if name in DEPRECATED:
        new, removed = DEPRECATED[name]
        warnings.warn(f"unpaired.api.{name} is deprecated and leaves the API in {removed}; use {new}",
                      DeprecationWarning, stacklevel=2)
        return globals()[new]
    raise AttributeError(f"module 'unpaired.api' has no attribute {name!r}")


__all__ = [
    "API_VERSION",
    # hooks and plugins
    "hookimpl", "get_registry", "register_plugin", "unregister_plugin", "load_plugin_file",
    # errors: every message names the key, the file or the value
    "UnpairedError", "one_of", "number", "flag", "quoted",
    # objectives: the base class, what one receives, and its loss roles
    "Objective", "Parts", "Step", "Adversarial", "ADVERSARIAL", "RECONSTRUCTION", "ImagePool",
    # conditioned networks and stochastic translators
    "CONDITIONS", "TIMESTEP", "NOISE", "parse_conditions", "draw_noise",
    # images and tensors
    "SIZE_MULTIPLE", "MIN_SIDE", "size_multiple", "pad_to_multiple", "from_uint8", "to_tensor", "to_image",
    "IMAGE_EXTENSIONS", "find_images", "load_image", "scan_folder", "skipped_summary", "usable_problem", "DATASETS",
    "Labels", "label_folder", "read_label", "scan_labels",
    # the held-out images a run shows (the figure, the report)
    "held_out_items", "item_image", "item_name", "spread", "eager",
    "Timeline", "held_out_inputs", "shown_note", "write_report",
    # writing the user's disk safely, and text for the terminal
    "atomic_path", "atomic_open", "write_text", "write_bytes", "save_image", "open_append", "refuse_link",
    "make_console", "printable", "shell_command",
    # feature extractors
    "builtin_extractors",
    # the contract checks for a plugin's own tests
    "check_generator", "check_discriminator", "check_loss", "check_dataset", "check_feature_extractor",
    "check_augmentation", "check_objective", "check_constraint", "check_backbone",
]
