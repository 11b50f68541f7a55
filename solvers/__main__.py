import sys

from solvers.run import main

sys.exit(main())
