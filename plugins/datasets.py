"""The ``image_folder`` dataset: two folders of unpaired images.

Layout: ``ROOT/trainA``, ``ROOT/trainB`` (and ``testA``, ``testB``), as the CycleGAN data
sets ship, or two explicit folders ``a: DIR`` and ``b: DIR`` (then ``root`` is not read at all:
held-out images come from ``test_a: DIR`` and ``test_b: DIR`` when named, else they are the
training images, and the dataset's ``held_out_note`` says so). Training items are
unaligned: item i is A[i] with a B drawn at random, and an epoch is max(|A|, |B|) pairs.
Pipeline (the reference's): resize to ``load_size`` (bicubic) -> random ``crop_size`` crop
-> random horizontal flip -> tensor in [-1, 1]. The test split is deterministic: resize,
centre crop, no flip, B aligned by index.

Labels (``labels: auto``, the default): a domain whose image folder has a ``<folder>_label``
folder beside it (``trainA_label/``, ``testA_label/``, ``photos_label/``) gets its labels read
(unpaired.data.labels: a PNG of class indices or a 0/255 mask per image, same name), checked
before training, and each item then carries ``A_label`` (and/or ``B_label``): an int64 (H, W)
tensor of class indices, resized (nearest), cropped and flipped with its image. ``labels:
false`` ignores them; ``label_classes`` fixes K (default: the largest value + 1).
"""
import logging
from pathlib import Path

import torch
from PIL import Image

from unpaired.api import (DATASETS, UnpairedError, flag, from_uint8, hookimpl, label_folder, load_image, number,
                          one_of, read_label, scan_folder, scan_labels, skipped_summary, usable_problem)

log = logging.getLogger("unpaired.data")

PREPROCESS = ("resize_crop", "scale_crop", "crop")
MAX_SIDE = 8192  # load_size and crop_size: a 8192-px crop is 800 MB as a float tensor


class ImageFolderDataset(torch.utils.data.Dataset):
    def __init__(self, root=None, split="train", a=None, b=None, load_size=286, crop_size=256,
                 flip=True, preprocess="resize_crop", channels=3, on_bad_file="skip", test_a=None, test_b=None,
                 labels="auto", label_classes=None) -> None:
        one_of("data.params.preprocess", preprocess, PREPROCESS)
        one_of("data.params.on_bad_file", on_bad_file, ("skip", "error"))
        one_of("data.params.split", split, ("train", "test"))
        one_of("data.params.channels", channels, (1, 3))
        number("data.params.load_size", load_size, 1, MAX_SIDE, integer=True)
        number("data.params.crop_size", crop_size, 1, MAX_SIDE, integer=True)
        flag("data.params.flip", flip)
        if labels not in ("auto", True, False):
            raise UnpairedError(f"data.params.labels: {labels!r} must be auto (read <folder>_label/ where it exists), "
                                "true (require them for both domains) or false")
        if label_classes is not None:
            number("data.params.label_classes", label_classes, 2, 255, integer=True)
        if crop_size > load_size and preprocess != "crop":
            raise UnpairedError(f"data.params.crop_size ({crop_size}) is larger than "
                                f"data.params.load_size ({load_size})")
        self.split, self.load_size, self.crop_size = split, load_size, crop_size
        self.flip = flip and split == "train"
        self.preprocess, self.channels = preprocess, channels
        self.files = {}
        self.held_out_note = None  # the contract's optional attribute: why a test split is not held out
        for pair, keys in (((a, b), "a and b"), ((test_a, test_b), "test_a and test_b")):
            if (pair[0] is None) != (pair[1] is None):
                raise UnpairedError(f"data.params.{keys.replace(' and ', ' and data.params.')} go together: "
                                    "name both folders, or neither")
        if test_a is not None and a is None:
            raise UnpairedError("data.params.test_a and test_b name held-out folders beside your own training "
                                "folders: set data.params.a and data.params.b too (with root, use ROOT/testA and "
                                "ROOT/testB)")
        prefix = "data.params."
        if a is not None:  # the user's own folders: nothing comes from root (a recipe's bundled set)
            root = None
            if split == "test":
                if test_a is not None:
                    a, b, prefix = test_a, test_b, "data.params.test_"
                else:
                    self.held_out_note = ("no held-out folders named (data.params.test_a and test_b): sample grids, "
                                          "the end-of-run figure, the report and evaluation use your training "
                                          f"images {a} and {b} (not held out); name held-out folders with "
                                          "data.params.test_a=DIR data.params.test_b=DIR")
        elif split == "test" and _no_test_folders(root):
            split = "train"  # the held-out transforms (centre crop, no flip, aligned) on training images
            self.held_out_note = (f"no folders {root}/testA and testB: sample grids, the end-of-run figure and "
                                  "evaluation use training images (not held out); add testA/ and testB/ for "
                                  "held-out ones")
        self.folders = {}
        self.labels = {}  # domain -> unpaired.data.labels.Labels, for the domains that have them
        for domain, explicit in (("A", a), ("B", b)):
            folder = self.folders[domain] = _domain_folder(root, split, domain, explicit, prefix + domain.lower())
            self.files[domain] = _usable_files(folder, domain, on_bad_file, crop_size)
            beside = label_folder(folder)
            if labels is True and not beside.is_dir():
                raise UnpairedError(f"data.params.labels: true, and domain {domain} has no label folder {beside}")
            if labels is not False and beside.is_dir():
                self.labels[domain] = scan_labels(self.files[domain], beside, "data.params.labels", label_classes)
        # the contract's optional attribute: classes per labelled domain (constraints size their networks on it)
        self.label_classes = {d: lab.classes for d, lab in self.labels.items()}

    def describe(self):
        """Where the images come from, in words: ``A photos/ (24 images), B paintings/ (24 images)``
        (and ``, labels of 3 classes`` for a labelled domain)."""
        return ", ".join(f"{d} {self.folders[d]} ({len(self.files[d])} images"
                         + (f", labels of {self.labels[d].classes} classes" if d in self.labels else "") + ")"
                         for d in ("A", "B"))

    def __len__(self) -> int:
        return max(len(self.files["A"]), len(self.files["B"]))

    def __getitem__(self, index):
        a_path = self.files["A"][index % len(self.files["A"])]
        if self.split == "train":  # unaligned: a random B (the engine seeds the generator)
            b_index = int(torch.randint(len(self.files["B"]), ()))
        else:
            b_index = index % len(self.files["B"])
        b_path = self.files["B"][b_index]
        item = {"A_path": str(a_path), "B_path": str(b_path)}
        for domain, i in (("A", index % len(self.files["A"])), ("B", b_index)):
            labels = self.labels.get(domain)
            image, label = self._load(self.files[domain][i], labels.paths[i] if labels else None,
                                      labels.mask if labels else False)
            item[domain] = image
            if label is not None:
                item[f"{domain}_label"] = label
        return item

    def _load(self, path, label_path=None, mask=False):
        """(image tensor in [-1, 1], its label as int64 (H, W) or None), through one geometry."""
        # big JPEGs decode at reduced scale (never below load_size) unless crops are taken at
        # the native resolution
        draft = None if self.preprocess == "crop" or label_path is not None else self.load_size
        img = load_image(path, channels=self.channels, max_side=draft)
        label = None
        if label_path is not None:
            values = read_label(label_path)
            label = Image.fromarray((values == 255).astype("uint8") if mask else values, mode="L")
            if label.size != img.size:  # decoded at another scale (EXIF rotation is not applied to labels)
                raise UnpairedError(f"label {label_path}: {label.size[0]} x {label.size[1]} pixels, its image "
                                    f"{path} is {img.size[0]} x {img.size[1]} as loaded (an EXIF rotation?)")
        size = None
        if self.preprocess == "resize_crop":
            size = (self.load_size, self.load_size)
        elif self.preprocess == "scale_crop":
            w, h = img.size
            s = max(self.load_size / min(w, h), self.crop_size / min(w, h))
            size = (max(self.crop_size, round(w * s)), max(self.crop_size, round(h * s)))
        if size is not None:
            img = img.resize(size, Image.Resampling.BICUBIC)
            label = label.resize(size, Image.Resampling.NEAREST) if label is not None else None
        img = _fit(img, self.crop_size)
        if label is not None and label.size != img.size:
            label = label.resize(img.size, Image.Resampling.NEAREST)
        w, h = img.size
        if self.split == "train":
            x = int(torch.randint(w - self.crop_size + 1, ()))
            y = int(torch.randint(h - self.crop_size + 1, ()))
        else:
            x, y = (w - self.crop_size) // 2, (h - self.crop_size) // 2
        box = (x, y, x + self.crop_size, y + self.crop_size)
        img = img.crop(box)
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        t = t.view(self.crop_size, self.crop_size, self.channels).permute(2, 0, 1)
        lab = None
        if label is not None:
            lab = torch.frombuffer(bytearray(label.crop(box).tobytes()), dtype=torch.uint8)
            lab = lab.view(self.crop_size, self.crop_size).long()
        if self.flip and torch.rand(()) < 0.5:
            t = t.flip(-1)
            lab = lab.flip(-1) if lab is not None else None
        return from_uint8(t), lab


def _fit(img, crop_size):
    """Upscale an image smaller than the crop so that the crop fits."""
    w, h = img.size
    if w >= crop_size and h >= crop_size:
        return img
    s = crop_size / min(w, h)
    return img.resize((max(crop_size, round(w * s)), max(crop_size, round(h * s))), Image.Resampling.BICUBIC)


def _no_test_folders(root):
    """True when ``root`` holds trainA and trainB but not both testA and testB."""
    if root is None:
        return False
    root = Path(root).expanduser()
    has = {name: (root / name).is_dir() for name in ("trainA", "trainB", "testA", "testB")}
    return has["trainA"] and has["trainB"] and not (has["testA"] and has["testB"])


def _domain_folder(root, split, domain, explicit, explicit_key):
    if explicit is not None:
        folder, key = Path(explicit).expanduser(), explicit_key
    elif root is None:
        raise UnpairedError("data.params.root is not set: point it at a folder holding trainA/ and trainB/ "
                            "(or set data.params.a and data.params.b to two folders)")
    else:
        folder, key = Path(root).expanduser() / f"{split}{domain}", "data.params.root"
    if not folder.is_dir():
        hint = ""
        if explicit is None and not Path(root).expanduser().is_dir():
            hint = f" The folder {root} does not exist"
            if Path(root).expanduser().is_absolute():
                hint += "."
            else:
                hint += (f" in the current folder {Path.cwd()} (nor beside the recipe, nor in the folder above it). "
                         f"Give its absolute path, e.g. data.params.root=/path/to/{Path(root).name}, or run from the "
                         "folder that holds it.")
            if Path(root).name in DATASETS:
                hint += f" `unpaired data download {Path(root).name} --root {Path(root).parent}` fetches it."
        raise UnpairedError(f"{key}: no folder {folder} (domain {domain}, split {split}).{hint}")
    return folder


def _usable_files(folder, domain, on_bad_file, crop_size):
    scan = scan_folder(folder)
    problem = usable_problem(scan, domain, on_bad_file)
    if problem:
        detail = f" {skipped_summary(scan.bad, folder)}" if scan.bad else ""
        raise UnpairedError(f"data.params: {problem}.{detail}")
    if scan.bad:
        log.warning("%s", skipped_summary(scan.bad, folder, total=len(scan.good) + len(scan.bad)))
    small = [p for p in scan.good if min(scan.info[p].width, scan.info[p].height) < crop_size]
    if small:
        log.warning("%d of %d images in %s are smaller than the %d-px crop and are upscaled (e.g. %s)",
                    len(small), len(scan.good), folder, crop_size, small[0].name)
    return scan.good


def image_folder(root=None, split="train", a=None, b=None, load_size=286, crop_size=256, flip=True,
                 preprocess="resize_crop", channels=3, on_bad_file="skip", test_a=None, test_b=None, labels="auto",
                 label_classes=None):
    """Unpaired images from ``root``/{split}A and {split}B, or from folders ``a`` and ``b``
    (held out: ``test_a`` and ``test_b``; ``root`` is then not read).
    ``preprocess``: resize_crop (resize to load_size square, the reference's), scale_crop
    (shorter side to load_size, keeps the aspect), crop (no resize). ``on_bad_file``: skip
    (with a summary naming each file) or error. ``channels``: 3 (RGB) or 1 (grayscale).
    ``labels``: auto (read ``<folder>_label/`` where it exists), true (required), false;
    ``label_classes``: K (default: the largest label value + 1)."""
    return ImageFolderDataset(root, split, a, b, load_size, crop_size, flip, preprocess, channels, on_bad_file,
                              test_a, test_b, labels, label_classes)


@hookimpl
def register_datasets(register) -> None:
    register("image_folder", image_folder, help="two folders of unpaired images (CycleGAN layout)")
