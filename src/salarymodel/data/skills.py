"""Skill names folded to one spelling: adapters and the feature builder share it."""

from __future__ import annotations

import re
from collections.abc import Mapping


def normalise_skill(name: str, aliases: Mapping[str, str]) -> str:
    """Lower-case, trim and alias-fold one skill name ("PowerBI" -> "power bi")."""
    key = re.sub(r"\s+", " ", name.strip().lower())
    return aliases.get(key, key)
