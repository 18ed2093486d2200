"""``python -m gui`` opens the window, like the ``specchat`` command."""

import sys

from gui.app import main

sys.exit(main())
