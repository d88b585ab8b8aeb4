"""The settings sections' base model: a key a section does not know is an error."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A settings section: a key it does not know is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")
