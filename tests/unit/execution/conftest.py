"""Log to the stderr of the running test.

structlog's print logger keeps the stream it was configured with; a test elsewhere that runs
the CLI under ``capsys`` leaves it pointing at a closed capture, and the next log line raises.
"""

from __future__ import annotations

import pytest

from tradegraph.observability import configure_logging


@pytest.fixture(autouse=True)
def _log_to_current_stderr() -> None:
    configure_logging()
