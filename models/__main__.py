"""``python -m models``: the ``minigrad`` command (models/cli.py), without the installed script."""

from models.cli import main

raise SystemExit(main())
