"""CLI command modules. Each module here (not starting with ``_``) defines ``register(subparsers)`` and an
optional ``ORDER`` (int, for ``--help`` listing order); ``kwsc.cli`` discovers them automatically."""
