"""The supervisor of a multi-process server, as a fresh interpreter: ``onshore server`` does its
start-up work, then replaces itself with ``python -m onshore.cli.supervise``, which reads the
configuration from the ``ONSHORE_*`` environment it exported, binds the ports and runs the
workers (:mod:`onshore.cli.supervisor`). Only the configuration, uvicorn and the HTTP protocol
are imported here, so the supervisor holds no copy of the application in memory.
"""

from __future__ import annotations

import sys

from onshore.cli.server import configure_logging, serve
from onshore.config import load


def main() -> int:
    config = load()
    configure_logging(config.log_level)
    return serve(config, "onshore.app:create_app")


if __name__ == "__main__":
    sys.exit(main())
