"""The report behind ``unpaired data check ROOT``: is this folder ready for training?

For each image folder it counts the usable files, gives the range of widths and heights
and the stored modes, lists every unusable file with the reason, and finds duplicate files
(same bytes), including test images that also appear in a training folder. The exit code
is 1 when a training run would refuse the data (missing trainA/trainB, a domain without a
loadable image, or any unusable file when the run uses ``on_bad_file: error``), else 0.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..console import printable
from ..errors import UnpairedError
from .download import sha256_of
from .images import Scan, require_folder, scan_folder, usable_problem
from .labels import Labels, label_folder, scan_labels

CYCLEGAN_TRAIN = ("trainA", "trainB")
CYCLEGAN_TEST = ("testA", "testB")
# below this many images in a training domain, a discriminator memorises them (docs/training.md, "Few images")
FEW_IMAGES = 500


@dataclass
class FolderReport:
    """One image folder of the data set: ``role`` is 'train' (a domain) or 'test'."""

    label: str
    path: Path
    role: str
    scan: Scan
    labels: Labels | None = None  # the <folder>_label/ beside it, read and checked, when there is one

    @property
    def widths(self) -> list[int]:
        return [info.width for info in self.scan.info.values()]

    @property
    def heights(self) -> list[int]:
        return [info.height for info in self.scan.info.values()]

    @property
    def modes(self) -> Counter:
        return Counter(info.mode for info in self.scan.info.values())


@dataclass
class DataReport:
    """Everything ``unpaired data check`` found; ``problems`` are the reasons training would refuse."""

    root: Path
    folders: list[FolderReport] = field(default_factory=list)
    duplicates: list[list[Path]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def render(self) -> RenderableType:
        parts: list[RenderableType] = [Text(f"Data check of {_line(self.root)}", style="bold")]
        if self.folders:
            parts.append(self._table())
        bad = [(f, path, reason) for f in self.folders for path, reason in f.scan.bad]
        if bad:
            parts.append(Text(f"Unusable files ({len(bad)}):", style="bold red"))
            parts.extend(Text(f"  {self._rel(path)}: {_line(reason)}") for _, path, reason in bad)
        if self.duplicates:
            count = sum(len(group) - 1 for group in self.duplicates)
            copies = "copy" if count == 1 else "copies"
            parts.append(Text(f"Duplicate files ({count} extra {copies}, same content):", style="bold yellow"))
            for group in self.duplicates:
                leak = "  <- in both a train and a test folder" if self._crosses_splits(group) else ""
                parts.append(Text("  " + " = ".join(self._rel(p) for p in group) + leak))
        parts.extend(Text(f"Note: {_line(note)}", style="yellow") for note in self.notes)
        if self.problems:
            parts.append(Text("NOT READY: a training run would refuse this data:", style="bold red"))
            parts.extend(Text(f"  - {_line(problem)}") for problem in self.problems)
        else:
            counts = ", ".join(f"{_line(f.label)} {len(f.scan.good)}" for f in self.folders if f.role == "train")
            parts.append(Text(f"OK: ready for training ({counts} usable images).", style="bold green"))
        return Group(*parts)

    def text(self, width: int = 120) -> str:
        """The report as plain text (no colours)."""
        buffer = StringIO()
        Console(file=buffer, width=width, color_system=None, force_terminal=False, markup=False).print(self.render())
        return buffer.getvalue()

    def _table(self) -> Table:
        table = Table(show_edge=False, header_style="bold")
        labelled = any(f.labels is not None for f in self.folders)
        columns = ("folder", "images", "unusable", "width", "height", "modes") + (("labels",) if labelled else ())
        for column in columns:
            table.add_column(column, justify="right" if column in ("images", "unusable") else "left")
        for f in self.folders:
            modes = ", ".join(f"{mode} {n}" for mode, n in f.modes.most_common())
            row = [_line(f.label), str(len(f.scan.good)), str(len(f.scan.bad)), _span(f.widths), _span(f.heights),
                   modes or "-"]
            if labelled:
                row.append("-" if f.labels is None else _label_cell(f.labels))
            table.add_row(*row)
        return table

    def _rel(self, path: Path) -> str:
        """``path`` as shown: relative to the root, a line break in a name shown as ``\\n``."""
        try:
            return _line(path.relative_to(self.root).as_posix())
        except ValueError:
            return _line(path)

    def _crosses_splits(self, group: list[Path]) -> bool:
        roles = {f.role for f in self.folders for p in group if p in f.scan.info}
        return roles == {"train", "test"}


def _line(text: object) -> str:
    """Text from a file name or a folder as one printed line (control characters and line breaks escaped)."""
    return printable(text, newlines=False)


def check_data(root: str | os.PathLike, a: str | os.PathLike | None = None, b: str | os.PathLike | None = None,
               on_bad_file: str = "skip", progress: bool = False) -> DataReport:
    """Check a data folder: the CycleGAN layout (trainA, trainB, optional testA, testB) or,
    with ``a`` and ``b``, two domain folders (inside ``root``, else as given).

    ``on_bad_file`` is the policy the training run will use ("skip" or "error", as the
    image_folder dataset's ``on_bad_file``); it decides whether unusable files fail the check.
    """
    root = require_folder(root, "data folder", "check the path, or fetch a standard set with "
                          f"'unpaired data download NAME --root {Path(root).parent}'",
                          "give the folder that holds trainA and trainB (or two domain folders with --a and --b)")
    if (a is None) != (b is None):
        raise UnpairedError("give both domain folders (--a and --b) or neither (then ROOT must hold "
                            "trainA and trainB)")
    report = DataReport(root=root)
    if a is not None:
        domains = [(str(d), _domain_path(root, d), "train") for d in (a, b) if d is not None]
    else:
        domains = [(name, root / name, "train") for name in CYCLEGAN_TRAIN]
        domains += [(name, root / name, "test") for name in CYCLEGAN_TEST if (root / name).is_dir()]
    for label, path, role in domains:
        if not path.is_dir():
            report.problems.append(_missing_folder(root, label, path, explicit=a is not None))
            continue
        folder = FolderReport(label, path, role, scan_folder(path, progress=progress))
        report.folders.append(folder)
        if label_folder(path).is_dir():  # labels beside it: every one read and checked, as training will
            try:
                folder.labels = scan_labels(folder.scan.good, label_folder(path), f"labels of {label}")
            except UnpairedError as exc:
                report.problems.append(str(exc))
        problem = usable_problem(folder.scan, label, on_bad_file)
        if problem and role == "train":
            report.problems.append(problem)
        elif problem:
            report.notes.append(f"test folder {problem.removeprefix('domain ')}")
    few = [f for f in report.folders if f.role == "train" and 0 < len(f.scan.good) < FEW_IMAGES]
    if few:
        counts = ", ".join(f"{f.label} has {len(f.scan.good)}" for f in few)
        report.notes.append(f"few training images ({counts}; fewer than {FEW_IMAGES}): a discriminator memorises so "
                            "few within a few thousand steps and the translations degrade; train with augmentation "
                            "of what it sees: augment.name=ada (or augment.name=diffaugment), "
                            "docs/training.md 'Few images: augmentation'")
    present = [name for name in CYCLEGAN_TEST if (root / name).is_dir()]
    if a is None and len(present) < len(CYCLEGAN_TEST):
        what = "no testA/testB folders" if not present else f"only {present[0]}, no {_other_test(present[0])}"
        report.notes.append(f"{what}: fine for training; the run's sample grids, end-of-run figure and "
                            "`unpaired eval` use training images instead (a line says so)")
    report.duplicates = _duplicates([p for f in report.folders for p in f.scan.good])
    return report


def _label_cell(labels: Labels) -> str:
    """``3 classes (0: 61%, 1: 25%, 2: 14%)``, or ``mask (inside 12%)``: a folder's labels."""
    total = sum(labels.pixels) or 1
    if labels.mask:
        return f"mask (inside {100 * labels.pixels[1] / total:.0f}%)"
    shares = ", ".join(f"{k}: {100 * n / total:.0f}%" for k, n in enumerate(labels.pixels))
    return f"{labels.classes} classes ({shares})"


def _other_test(name: str) -> str:
    return next(other for other in CYCLEGAN_TEST if other != name)


def _domain_path(root: Path, folder: str | os.PathLike) -> Path:
    inside = root / folder
    return inside if inside.exists() else Path(folder).expanduser()


def _missing_folder(root: Path, label: str, path: Path, explicit: bool) -> str:
    if path.exists():
        return f"{path} is a file, not a folder of images"
    if explicit:
        return f"domain folder {label} does not exist (neither {root / label} nor {path}); check --a/--b"
    message = f"{path} is missing: the CycleGAN layout needs {root}/trainA and {root}/trainB"
    others = sorted(d.name for d in root.iterdir()
                    if d.is_dir() and not d.name.startswith(".") and d.name not in CYCLEGAN_TRAIN + CYCLEGAN_TEST)
    nested = [d for d in others if all((root / d / n).is_dir() for n in CYCLEGAN_TRAIN)]
    if nested:
        message += f"; {root / nested[0]} looks like a data set, check that folder instead"
    elif len(others) == 2:
        message += (f"; to use its two sub-folders as the domains pass --a {others[0]} --b {others[1]} (and train "
                    f"with data.params.a={root / others[0]} data.params.b={root / others[1]})")
    else:
        message += ("; for two folders of your own images pass --a DIR --b DIR (and train with data.params.a=DIR "
                    "data.params.b=DIR)")
    return message


def _duplicates(paths: list[Path]) -> list[list[Path]]:
    """Groups of files with identical content (sha256), in path order."""
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) + 4)) as pool:
        digests = list(pool.map(_sha256, paths))
    groups: dict[str, list[Path]] = defaultdict(list)
    for path, digest in zip(paths, digests, strict=True):
        if digest is not None:
            groups[digest].append(path)
    return [group for group in groups.values() if len(group) > 1]


def _sha256(path: Path) -> str | None:
    try:
        return sha256_of(path)
    except OSError:  # vanished or became unreadable since the scan: nothing to compare
        return None


def _span(values: list[int]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"
