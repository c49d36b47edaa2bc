import sys

from xqglib.cli import main

sys.exit(main())
