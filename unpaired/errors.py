"""The one exception a user is meant to see: the CLI prints its message and exits with 2."""


class UnpairedError(Exception):
    """A problem with the user's input (recipe, data, plugin names, params).

    The message says what is wrong, naming the key, file or value, and how to fix it.
    """


def user_message(exc):
    """The message of an UnpairedError, also when a DataLoader worker raised it (the loader
    re-raises it with the worker's traceback folded into the message)."""
    text = str(exc)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        text = last[len(prefix):] if last.startswith(prefix) else last
    return text
