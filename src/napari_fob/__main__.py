"""``python -m napari_fob``: the ``fob`` command line tool."""

import sys

from napari_fob.cli import main

sys.exit(main())
