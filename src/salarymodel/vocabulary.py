"""The codes a job is described with, their order and their display names: defined once.

Validation, features, serving and reports read these; nothing here imports
more than the standard library, so a service worker can.
"""

from __future__ import annotations

EXPERIENCE_LEVELS = ("EN", "MI", "SE", "EX")  # ordered, entry to executive
COMPANY_SIZES = ("S", "M", "L")  # ordered, small to large
EMPLOYMENT_TYPES = ("FT", "PT", "CT", "FL")
REMOTE_RATIOS = (0, 50, 100)
MAX_TITLE_LENGTH = 200
MAX_SKILLS = 100

EXPERIENCE_NAMES = {"EN": "entry", "MI": "mid", "SE": "senior", "EX": "executive"}
COMPANY_SIZE_NAMES = {"S": "small (< 50)", "M": "medium (50-250)", "L": "large (> 250)"}
EMPLOYMENT_NAMES = {"FT": "full time", "PT": "part time", "CT": "contract", "FL": "freelance"}
