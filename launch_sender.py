#!/usr/bin/env python3
"""Start the sender on a Pi: ``python3 launch_sender.py [--config server.json] [--emulator]``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sender import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
