"""Reader modules for self-describing statement formats; importing this package registers them all.

Add a module here and import it below: it calls ``recon.parsing.registry.register`` at import time.
"""
