"""Training tests: passive OpenMP waiting before torch loads (busy shared cores make spinning threads crawl)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
