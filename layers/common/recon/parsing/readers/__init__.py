"""Reader modules for self-describing statement formats; importing this package registers them all.

Add a module here and import it below: it calls ``recon.parsing.registry.register`` at import time.
"""

from . import bai2, camt054, mt940, ofx

__all__ = ["bai2", "camt054", "mt940", "ofx"]
