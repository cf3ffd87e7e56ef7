"""The one exception type that reaches users as a one-line message."""


class PnyxError(ValueError):
    """Bad input from a user: a config, a spec, a dataset, a CLI argument.

    The CLI prints ``pnyx: error: <message>`` and exits with status 2, without
    a traceback, so the message must name the offending token.
    """
