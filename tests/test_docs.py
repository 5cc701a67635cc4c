"""The documentation (README.md and docs/*.md) checked against the code, in seconds:

* every hook written as ``name(args)`` names the arguments of its spec in unpaired/hookspecs.py;
* every ``unpaired ...`` line of a ```bash block parses with the real command-line parser;
* every recipe key of an override (``a.b.c=...`` in commands and inline code) and of a ```yaml
  block exists in the schema (unpaired.recipe.config.Recipe) or lies under an open mapping (params);
* every ```python block compiles; blocks marked ``<!-- test: run -->`` on the line before are
  executed by tests/test_readme_snippets.py against a tiny trained run;
* every relative link points to a file that exists (and to a heading that exists, in a page);
* what the pages and the --help texts say about the recipes' quick blocks and tiling is what the
  recipes and unpaired/inference/tiling.py do.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import shlex
import typing
from pathlib import Path

import pytest
import yaml

from helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_MARKER = "<!-- test: run -->"


@dataclasses.dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str  # the last non-blank line before the fence

    def __str__(self):
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(paths=DOCS):
    """Fenced code blocks of the docs, indented ones (inside list items) too, dedented."""
    found = []
    for path in paths:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            opening = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
            if not opening:
                i += 1
                continue
            indent, lang = opening.groups()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:end]]
            before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            found.append(Block(path, i + 1, lang, "\n".join(body) + "\n", before))
            i = end + 1
    return found


def prose(path):
    """A page's text outside fenced blocks."""
    return re.sub(r"^\s*```.*?^\s*```", "", path.read_text(), flags=re.S | re.M)


def inline_code(path):
    return re.findall(r"`([^`\n]+)`", prose(path))


def runnable_blocks():
    """The ```python blocks marked to run, with their pages."""
    return [b for b in blocks() if b.lang == "python" and b.marker == RUN_MARKER]


# --------------------------------------------------------------------------- 1. hook signatures
def hook_specs():
    from unpaired import hookspecs

    marker = f"{hookspecs.PROJECT}_spec"
    return {name: list(inspect.signature(fn).parameters)
            for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, marker)}


def test_every_hook_written_with_arguments_names_its_specs_arguments():
    specs = hook_specs()
    assert "register_augmentations" in specs and "on_train_end" in specs
    pattern = re.compile(r"\b(" + "|".join(sorted(specs, key=len, reverse=True)) + r")\(([^()]*)\)")
    seen, wrong = 0, []
    for path in DOCS:
        for name, args in pattern.findall(path.read_text()):
            written = [a.split("=")[0].split(":")[0].strip() for a in args.split(",") if a.strip()]
            seen += 1
            if written != specs[name]:
                wrong.append(f"{path.relative_to(REPO)}: {name}({args}) — the spec is {name}({', '.join(specs[name])})")
    assert not wrong, "\n".join(wrong)
    assert seen >= len(specs)  # the pages do write hooks with their arguments


def test_the_plugin_guide_lists_every_hook_with_its_arguments():
    text = (REPO / "docs" / "plugins.md").read_text()
    for name, args in hook_specs().items():
        assert f"{name}({', '.join(args)})" in text, name


# --------------------------------------------------------------------------- 2. command lines
def command_lines():
    """(block, argv after `unpaired`) of every unpaired command in the docs' ```bash blocks."""
    found = []
    for block in blocks():
        if block.lang != "bash":
            continue
        for line in block.code.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            segment = []
            for token in [*tokens, "&&"]:
                if token not in ("&&", "||", ";", "|"):
                    segment.append(token)
                    continue
                if segment and segment[0] == "unpaired":
                    found.append((block, segment[1:]))
                elif "-m" in segment and segment[segment.index("-m") + 1:][:1] == ["unpaired"]:
                    found.append((block, segment[segment.index("-m") + 2:]))  # python -m, torchrun -m
                segment = []
    return found


COMMANDS = command_lines()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 40
    assert {argv[0] for _, argv in COMMANDS} >= {"run", "translate", "export", "eval", "report", "compare",
                                                  "serve", "data", "plugins"}


def parse(argv):
    """What ``unpaired.cli.main`` does with argv before running anything: the parsed arguments, with
    the overrides that may come before or after the options."""
    from unpaired.cli import build_parser, split_override

    assert split_override(argv) is None, f"an unquoted mapping the shell would split: {argv}"
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit:
        raise AssertionError(f"unpaired {shlex.join(argv)}: the parser refuses it") from None
    bad = [x for x in extra if x.startswith("-") or "=" not in x or not hasattr(args, "overrides")]
    assert not bad, f"unpaired {shlex.join(argv)}: unrecognized {bad}"
    if extra:
        args.overrides = list(args.overrides) + extra
    assert getattr(args, "func", None), f"unpaired {shlex.join(argv)}: no command"
    return args


@pytest.mark.parametrize("block,argv", COMMANDS, ids=[f"{b}:{' '.join(a[:2])}" for b, a in COMMANDS])
def test_every_command_line_parses(block, argv):
    parse(argv)


# --------------------------------------------------------------------------- 4. recipe keys
def key_in_schema(key):
    """Whether ``key`` (dotted) is a key of the recipe schema or lies under an open mapping."""
    from unpaired.recipe.config import OPEN_MAPPINGS, Recipe

    node: typing.Any = Recipe
    parts, i = key.split("."), 0
    while i < len(parts):
        if not dataclasses.is_dataclass(node) or parts[i] not in typing.get_type_hints(node):
            return False
        if parts[i] in OPEN_MAPPINGS or (node is Recipe and parts[i] == "quick"):
            return True  # plugins' keyword arguments, the quick block's dotted keys: free-form
        node = typing.get_type_hints(node)[parts[i]]
        while typing.get_origin(node) is typing.Union:  # Optional[X]
            node = next(a for a in typing.get_args(node) if a is not type(None))
        i += 1
        if typing.get_origin(node) is dict:  # losses.<role>: the role is free, its fields are not
            node, i = typing.get_args(node)[1], i + 1
    return True


OVERRIDE = re.compile(r"""(?:^|(?<=[\s"']))([a-z_]+(?:\.[a-z_0-9]+)+)=""")


def documented_keys():
    """(where, key) of every override in the docs: run commands' KEY=VALUE, inline code's
    ``a.b=...``, and the keys of ```yaml blocks."""
    keys = []
    for block, argv in COMMANDS:
        if argv[:1] == ["run"]:
            keys += [(str(block), o.split("=", 1)[0]) for o in parse(argv).overrides]
    for path in DOCS:
        for code in inline_code(path):
            keys += [(str(path.relative_to(REPO)), k) for k in OVERRIDE.findall(code)]
    for block in blocks():
        if block.lang == "yaml":
            keys += [(str(block), k) for k in _flatten(yaml.safe_load(block.code))]
    return keys


def _flatten(node, prefix=""):
    from unpaired.recipe.config import OPEN_MAPPINGS

    for key, value in node.items():
        dotted = f"{prefix}{key}"
        yield dotted
        if isinstance(value, dict) and key not in OPEN_MAPPINGS and dotted != "quick":
            yield from _flatten(value, dotted + ".")


def test_every_documented_recipe_key_is_in_the_schema():
    keys = documented_keys()
    assert len(keys) >= 50
    assert {"data.params.test_a", "data.params.a", "train.max_steps", "augment"} <= {k for _, k in keys}
    wrong = [f"{where}: {key}" for where, key in keys if not key_in_schema(key)]
    assert not wrong, "\n".join(wrong)


def test_the_schema_check_refuses_what_is_not_there():
    assert not key_in_schema("train.pool_size")  # moved to objective.params in 0.2
    assert not key_in_schema("data.paramz.root") and not key_in_schema("train.max_steps.x")
    assert key_in_schema("objective.params.pool_size") and key_in_schema("losses.adversarial.name")
    assert not key_in_schema("losses.cycle.wieght")


# --------------------------------------------------------------------------- 3. code blocks
@pytest.mark.parametrize("block", [b for b in blocks() if b.lang == "python"], ids=str)
def test_every_python_block_compiles(block):
    compile(block.code, str(block), "exec")


def test_runnable_blocks_are_the_ones_the_snippet_tests_run():
    runnable = runnable_blocks()
    assert {b.path.name for b in runnable} >= {"translate.md", "plugins.md"}
    assert any("Translator.from_checkpoint" in b.code for b in runnable)
    assert any("onnxruntime" in b.code for b in runnable)


@pytest.mark.parametrize("block", [b for b in blocks() if b.lang == "yaml"], ids=str)
def test_every_yaml_block_is_yaml(block):
    assert isinstance(yaml.safe_load(block.code), dict)


# --------------------------------------------------------------------------- links
def slug(heading):
    """The anchor MkDocs (Python-Markdown's toc) gives a heading."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


def anchors(path):
    return {slug(h) for h in re.findall(r"^#+\s+(.*)$", prose(path), re.M)}


def test_every_relative_link_points_to_a_file_that_exists():
    wrong, seen = [], 0
    for path in DOCS:
        text = re.sub(r"`[^`\n]+`", "", prose(path))  # code is not a link
        for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                if target.startswith("#") and target[1:] not in anchors(path):
                    wrong.append(f"{path.relative_to(REPO)}: {target}")
                continue
            seen += 1
            file, _, anchor = target.partition("#")
            where = (path.parent / file).resolve()
            if not where.exists():
                wrong.append(f"{path.relative_to(REPO)}: {target} (no {where})")
            elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                wrong.append(f"{path.relative_to(REPO)}: {target} (no heading #{anchor})")
    assert not wrong, "\n".join(wrong)
    assert seen >= 30


def test_the_site_has_every_page():
    config = (REPO / "mkdocs.yml").read_text()
    nav = set(re.findall(r"^\s+- [^:]+: (\S+\.md)$", config, re.M))
    assert {p.name for p in (REPO / "docs").glob("*.md")} <= nav


# --------------------------------------------------------------------------- what pages say = what code does
def test_the_quick_blocks_are_as_the_recipes_page_and_help_say():
    from unpaired.cli import build_parser

    table = (REPO / "docs" / "recipes.md").read_text().split("## The quick block", 1)[1].split("\n## ", 1)[0]
    for recipe in sorted((REPO / "recipes").glob("*.yaml")):
        quick = yaml.safe_load(recipe.read_text())["quick"]
        row = next(line for line in table.splitlines() if line.startswith("|") and f"`{recipe.name}`" in line)
        keep, steps = quick.get("train.keep_every", 0), quick["train.max_steps"]
        assert (f"| {keep} |" in row) if keep else ("not set (0)" in row and "none" in row), (recipe.name, row)
        if keep:
            assert f"{steps // keep}: " in row, (recipe.name, row)
        assert f"{steps:,} steps" in table, recipe.name
    forest = yaml.safe_load((REPO / "recipes" / "forest_abstract.yaml").read_text())["quick"]
    run_help = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert f"{forest['train.max_steps']:,} steps for forest_abstract" in " ".join(run_help.split())
    assert "hundred" not in run_help


def test_tiling_is_described_as_tiling_does_it():
    from unpaired.cli import build_parser
    from unpaired.inference import tiling

    side = int(tiling.WHOLE_MAX_PIXELS ** 0.5)
    assert side * side == tiling.WHOLE_MAX_PIXELS
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["translate"].format_help().split())
    page = " ".join((REPO / "docs" / "translate.md").read_text().split())
    assert f"{side}x{side} pixels" in help_text and f"{tiling.DEFAULT_TILE}-px tiles" in help_text
    assert "padded" in help_text and "0 never" in help_text
    assert f"{side} x {side} pixels" in page and f"{tiling.DEFAULT_TILE}-px tiles" in page
    assert "`--tile 0` never tiles" in page


def test_the_evaluation_metrics_are_named_as_the_code_names_them():
    from unpaired.evaluation import evaluate
    from unpaired.recipe.rules import RENAMED_METRICS

    results = " ".join((REPO / "docs" / "results.md").read_text().split())
    for name in (*evaluate.DISTRIBUTION, *evaluate.CYCLE, *evaluate.PAIRED):
        assert f"`{name}`" in results, name
    assert "`eval.metric: cycle_a` still works" in results
    for old, new in RENAMED_METRICS.items():
        assert f"`{old}`" in results and f"`{new}`" in results


def test_every_mapping_override_in_the_docs_is_quoted():
    """``KEY={a: 1}`` unquoted is split by the shell at its spaces (README.md's own check,
    tests/test_cli_first_run.py, here for every page)."""
    for path in DOCS:
        spans = [c for c in inline_code(path) if "(" not in c]  # a Python call's plugins=[...] is no override
        code = " ".join(spans) + " ".join(b.code for b in blocks([path]) if b.lang == "bash")
        unquoted = re.findall(r"""(?<!["'\w.])[\w.]+=[{\[]""", code)
        assert not unquoted, (path.name, unquoted)
