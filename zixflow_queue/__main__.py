"""`python -m zixflow_queue`: the `zixflow-queue` command."""

import sys

from zixflow_queue.cli import main

sys.exit(main())
