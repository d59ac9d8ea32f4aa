import sys

from vitaccel.cli import main

sys.exit(main())
