"""The one exception a user is meant to see: the CLI prints its message and exits with 2."""


class UnpairedError(Exception):
    """A problem with the user's input (recipe, data, plugin names, params).

    The message says what is wrong, naming the key, file or value, and how to fix it.
    """


def one_of(key, value, allowed):
    """``value`` when it is one of ``allowed``; else an UnpairedError naming ``key`` (a recipe key,
    a flag or a parameter): ``KEY: VALUE is not one of A, B, C``. For plugins too."""
    if value not in allowed:
        raise UnpairedError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")
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


def number(key, value, *, minimum=None, above=None, integer=False):
    """``value`` when it is a finite number (an int with ``integer``; never a bool), at least
    ``minimum`` and more than ``above`` where given; else an UnpairedError naming ``key``:
    ``KEY: VALUE must be a finite number >= 0``. For plugins' params."""
    import math

    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (above is None or value > above)
    if not ok:
        what = "an integer" if integer else "a finite number"
        bounds = [f">= {minimum}"] * (minimum is not None) + [f"> {above}"] * (above is not None)
        raise UnpairedError(f"{key}: {value!r} must be {what}" + (" " + " and ".join(bounds) if bounds else ""))
    return value
