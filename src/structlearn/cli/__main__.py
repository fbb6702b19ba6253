import sys

from structlearn.cli import main

sys.exit(main())
