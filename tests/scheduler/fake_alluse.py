"""``python -m tests.scheduler.fake_alluse ARGS``: the ``alluse`` command line with the test
cycles registered (``--cycle-factory test-dir``), for the daemon's subprocess tests."""

from __future__ import annotations

import sys

from scheduler.cli import main
from tests.scheduler.fake_cycle import register

if __name__ == "__main__":
    register()
    sys.exit(main(sys.argv[1:]))
