import sys

from tfcl.cli import main

sys.exit(main())
