"""Rich consoles for the command line: on a terminal, its width; into a pipe or a file, no
80-column limit, so paths and names are neither wrapped nor cut."""
import logging
import os

from rich.console import Console

PIPE_WIDTH = 400  # wide enough for any path; tables still take only the width they need


def make_console(stderr=False):
    console = Console(stderr=stderr)
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)


def log_handler():
    """Log records as rich lines on a terminal, as plain lines (``warning: ...``) otherwise."""
    console = Console(stderr=True)
    if console.is_terminal:
        from rich.logging import RichHandler

        return RichHandler(console=console, show_path=False, show_time=False)
    handler = logging.StreamHandler()
    handler.setFormatter(_Plain())
    return handler


class _Plain(logging.Formatter):
    def format(self, record):
        text = record.getMessage()
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"
