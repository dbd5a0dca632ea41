"""``python -m kwsc`` runs the CLI."""

import sys

from kwsc.cli import main

sys.exit(main())
