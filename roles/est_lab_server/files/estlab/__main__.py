"""Entry point for ``python3 -m estlab``."""

from .cli import main

raise SystemExit(main())
