"""Rich consoles for the command line: on a terminal, its width; into a pipe or a file, no
80-column limit, so paths and names are neither wrapped nor cut.

Text from outside (names and values from a checkpoint, a recipe or a file name) reaches the
terminal only through :func:`printable`, which shows control characters (ANSI escapes that
retitle a terminal or clear its screen, carriage returns, bidirectional overrides) as
visible escapes; every error, log line and console print of the command line passes through
it. A command suggested to the user is built with :func:`shell_command`, each word quoted
with ``shlex.quote``, so a crafted name cannot turn it into several commands.
"""
import logging
import os
import re
import shlex
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.segment import Segment

# C0 and C1 control characters (newline and tab stay), DEL, and Unicode's bidirectional
# overrides and isolates (they reorder what a terminal shows)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def printable(text: object, newlines: bool = True) -> str:
    """``text`` with its control characters shown as escapes (``\\x1b``), safe to print;
    ``newlines=False`` escapes line breaks and tabs too (a single name or value)."""
    text = _CONTROL.sub(_escape, str(text))
    if not newlines:
        text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text


def shell_command(*words: object) -> str:
    """A command line to suggest, each word quoted for the shell: ``pip install 'a b'``."""
    return " ".join(shlex.quote(str(w)) for w in words)


class SafeConsole(Console):
    """A rich Console that shows control characters in the text of everything it renders
    (strings, tables, progress columns) as escapes (:func:`printable`); rich's own styling and
    cursor control are added after, untouched."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(s if s.control else Segment(printable(s.text), s.style) for s in buffer)


PIPE_WIDTH = 400  # wide enough for any path; tables still take only the width they need


def make_console(stderr: bool = False, **kwargs: Any) -> SafeConsole:
    """A SafeConsole that reads no markup: text from users (a path holding ``[red]`` or ``[/]``)
    is printed as it is; our own styles are Text objects or ``style=`` arguments."""
    kwargs.setdefault("markup", False)
    console = SafeConsole(stderr=stderr, **kwargs)
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return SafeConsole(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True, **kwargs)


def log_handler() -> logging.Handler:
    """Log records as rich lines on a terminal, as plain lines (``warning: ...``) otherwise."""
    console = Console(stderr=True)
    handler: logging.Handler
    if console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False, show_time=False)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(_Plain())
    handler.addFilter(_printable_record)
    return handler


def _printable_record(record: logging.LogRecord) -> bool:
    """A log filter: the record's message with control characters escaped."""
    text = record.getMessage()
    safe = printable(text, newlines=False)  # one record, one line: a name holding a line break forges none
    if safe != text:
        record.msg, record.args = safe, None
    return True


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"
