"""Entry point of the frozen bundle: the window, ``--self-test``/``--version``, or
(when the window relaunches the executable with the worker argument) the engine
process. ``gui.app.main`` decides which."""

import sys

from gui.app import main

if __name__ == "__main__":
    sys.exit(main())
