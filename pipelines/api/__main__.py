"""`python -m pipelines.api`: the same as `mailroom api`."""

import sys

from pipelines.api._server import main

sys.exit(main())
