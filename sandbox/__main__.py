"""``python -m sandbox``: serve the sandbox (see ``sandbox._cli``)."""

from sandbox._cli import main

main()
