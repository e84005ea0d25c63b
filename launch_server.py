#!/usr/bin/env python3
"""Start the aggregator: ``python3 launch_server.py [--config server.json]``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
