"""MkDocs hook: the site carries the repository's BENCHMARKS.md as a page of its own.

Pages link to ``../BENCHMARKS.md`` (right on GitHub, where docs/ sits beside it); here the
file is added to the site as ``BENCHMARKS.md`` and those links are pointed at it, so
``mkdocs build --strict`` checks them like any other link; its pictures (``docs/NAME.jpg`` on
GitHub) are pointed at the site's root."""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
NAME = "BENCHMARKS.md"


def on_files(files, config):
    files.append(File.generated(config, NAME, abs_src_path=str(ROOT / NAME)))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == NAME:  # BENCHMARKS.md's own pictures live in docs/, the site's root
        return markdown.replace("](docs/", "](")
    depth = page.file.src_uri.count("/")  # pages in sub-folders link one ../ further up
    return markdown.replace(f"]({'../' * (depth + 1)}{NAME}", f"]({'../' * depth}{NAME}")
