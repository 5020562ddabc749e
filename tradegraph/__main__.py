from __future__ import annotations

import sys

from tradegraph.cli.main import main

sys.exit(main())
