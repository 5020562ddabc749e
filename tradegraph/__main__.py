from __future__ import annotations

import sys

from tradegraph.cli import main

sys.exit(main())
