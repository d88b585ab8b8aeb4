"""salarymodel: salary estimates for AI, ML and data jobs."""

import os

# LightGBM's OpenMP threads busy-wait by default. On a 2-core machine two
# processes that both train (a test run beside a service, CI beside a
# benchmark) then starve each other by orders of magnitude; passive waiting
# costs little and keeps them fair. Must be set before lightgbm is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
