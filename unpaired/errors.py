"""The one exception a user is meant to see: the CLI prints its message and exits with 2."""


class UnpairedError(Exception):
    """A problem with the user's input (recipe, data, plugin names, params).

    The message says what is wrong, naming the key, file or value, and how to fix it.
    """
