"""`python -m core`: the command line (see core/io/cli.py)."""
import sys

from core.io.cli import main

sys.exit(main())
