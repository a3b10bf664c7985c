"""``python -m minigrad``: the ``minigrad`` command, whose code lives in models/cli.py.

The one place where minigrad reaches up to models/ (the command runs the zoo's recipes); the
library itself never imports models.
"""

from models.cli import main

raise SystemExit(main())
