import sys

from onshore.cli.main import main

sys.exit(main())
