"""The one exception a user is meant to see: the CLI prints its message and exits with 2."""


class UnpairedError(Exception):
    """A problem with the user's input (recipe, data, plugin names, params).

    The message says what is wrong, naming the key, file or value, and how to fix it. It is
    printed as one line (a line break in a name from a file or a checkpoint is shown as ``\\n``,
    so it cannot forge a line); ``problems`` lists several, printed one a line.
    """

    def __init__(self, message: str = "", *, problems: "list[str] | None" = None) -> None:
        if problems:
            message = problem_lines(problems)
        super().__init__(message)
        self.problems = list(problems or [])


def problem_lines(problems: "list[str]") -> str:
    """One problem as it is; several under a line that counts them, one a line."""
    head = f"the recipe has {len(problems)} problems:\n  " if len(problems) > 1 else ""
    return head + "\n  ".join(problems)


def quoted(value, limit: int = 120) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters with the full length said
    (a 1 MB string from a checkpoint is not echoed whole)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def one_of(key, value, allowed):
    """``value`` when it is one of ``allowed``; else an UnpairedError naming ``key`` (a recipe key,
    a flag or a parameter): ``KEY: VALUE is not one of A, B, C``. For plugins too."""
    if value not in allowed:
        raise UnpairedError(f"{key}: {quoted(value)} is not one of {', '.join(map(str, allowed))}")
    return value


def number(key, value, low=None, high=None, *, integer=False, above=False, below=False):
    """``value`` when it is a finite number (an integer with ``integer=True``; never a bool, a
    string or NaN) at least ``low`` (more than ``low`` with ``above=True``) and at most
    ``high`` (less than ``high`` with ``below=True``); else an UnpairedError naming ``key``:
    ``KEY: VALUE must be a finite number > 0``. For plugins' params too (the built-ins check
    theirs with it)."""
    import math

    kind = "an integer" if integer else "a finite number"
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    ok = ok and (integer or math.isfinite(value))
    if ok and low is not None:
        ok = value > low if above else value >= low
    if ok and high is not None:
        ok = value < high if below else value <= high
    if not ok:
        bounds = [f"{'>' if above else '>='} {low}" if low is not None else "",
                  f"{'<' if below else '<='} {high:,}" if high is not None else ""]
        raise UnpairedError(f"{key}: {quoted(value)} must be {kind} {' and '.join(b for b in bounds if b)}".rstrip())
    return value


def flag(key, value):
    """``value`` when it is true or false; else an UnpairedError naming ``key``."""
    if not isinstance(value, bool):
        raise UnpairedError(f"{key}: {quoted(value)} must be true or false")
    return value


def user_message(exc):
    """The message of an UnpairedError, also when a DataLoader worker raised it (the loader
    re-raises it with the worker's traceback folded into the message)."""
    text = str(exc)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        text = last[len(prefix):] if last.startswith(prefix) else last
    return text

