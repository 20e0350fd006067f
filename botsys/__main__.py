"""python -m botsys → the command line."""

from .cli import main

raise SystemExit(main())
