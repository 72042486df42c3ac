"""Makes the workflow's package importable in every rule's script: Snakemake puts this
folder on the script's sys.path, so `import _paths` works in a conda env or on a cluster
node where whisper_mxq is not installed, and this puts the package's folder beside it."""

import os
import sys

PACKAGE_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
if PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, PACKAGE_ROOT)
