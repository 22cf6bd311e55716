import sys

from supportflow.devservices.cli import main

sys.exit(main())
