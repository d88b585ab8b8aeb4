"""Job title normalisation: role family, core title, seniority and words, from one cleaning.

The rules are word lists in ``configs/salarymodel.yaml`` (``features``); this
module only applies them. Matching is case-insensitive and word-bounded, so
"AI Engineer" hits the keyword "ai" but "Retail Analyst" does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from salarymodel.config.data import FeaturesConfig

OTHER_FAMILY = "other"
# Titles whose parse one rules object remembers.
# Training encodes the same 10,000 titles for every fold and split (a dozen
# times); the bound keeps a long-running service's memory flat.
MEMO_LIMIT = 50_000
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _keyword_pattern(keywords: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(k.lower()) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")


def clean_title(title: object) -> str:
    """Lower-case a title and fold punctuation that separates words into spaces."""
    if not isinstance(title, str):
        return ""
    text = title.lower().replace("&", " and ")
    text = re.sub(r"[,()\[\]|:;_]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class ParsedTitle:
    """What a title says: its role family, its core words and its seniority level."""

    family: str
    core: str
    seniority: int | None
    words: tuple[str, ...] = ()  # words and word runs (``TitleRules.words``)


@dataclass(frozen=True)
class TitleRules:
    """Compiled role-family and seniority rules."""

    family_patterns: tuple[tuple[str, re.Pattern[str]], ...]
    seniority_patterns: tuple[tuple[int, re.Pattern[str]], ...]
    seniority_to_experience: dict[int, str]
    word_ngrams: int = 2
    _memo: dict[str, ParsedTitle] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @classmethod
    def from_config(cls, features: FeaturesConfig) -> TitleRules:
        families = tuple((f.family, _keyword_pattern(f.keywords)) for f in features.role_families)
        seniority = tuple(
            (level, _keyword_pattern(words))
            for level, words in sorted(features.seniority_words.items(), reverse=True)
        )
        return cls(
            families,
            seniority,
            dict(features.seniority_to_experience),
            features.title_words.ngrams,
        )

    @property
    def family_names(self) -> list[str]:
        return [name for name, _ in self.family_patterns] + [OTHER_FAMILY]

    def parse(self, title: object) -> ParsedTitle:
        """The title's family, core words and seniority, from one cleaning of it (remembered)."""
        if not isinstance(title, str):
            return self._parse(title)
        parsed = self._memo.get(title)
        if parsed is None:
            parsed = self._parse(title)
            if len(self._memo) < MEMO_LIMIT:
                self._memo[title] = parsed
        return parsed

    def role_family(self, title: object) -> str:
        """The first configured family whose keyword occurs in the title, else "other"."""
        return self.parse(title).family

    def seniority(self, title: object) -> int | None:
        """The highest seniority level named in the title (0 intern .. 5 executive), or None."""
        return self.parse(title).seniority

    def core_title(self, title: object) -> str:
        """The title without seniority words, location suffixes or numbering.

        "Senior Data Engineer II - Austin, TX" -> "data engineer". Used as a
        fine-grained title category next to the coarse role family.
        """
        return self.parse(title).core

    def words(self, title: object) -> tuple[str, ...]:
        """The title's distinct words and runs of up to ``word_ngrams`` words, in order.

        "Senior Data Scientist" -> ("senior", "data", "scientist", "senior data",
        "data scientist") with bigrams. Letters and digits only, so a word's
        column name stays unique once LightGBM's name rules are applied.
        """
        return self.parse(title).words

    def _words(self, text: str) -> tuple[str, ...]:
        tokens = _NOT_WORD.sub(" ", text).split()
        found: dict[str, None] = {}
        for n in range(1, self.word_ngrams + 1):
            for start in range(len(tokens) - n + 1):
                found[" ".join(tokens[start : start + n])] = None
        return tuple(found)

    def _parse(self, title: object) -> ParsedTitle:
        text = clean_title(title)
        return ParsedTitle(
            self._role_family(text),
            self._core_title(text),
            self._seniority(text),
            self._words(text),
        )

    def _role_family(self, text: str) -> str:
        for name, pattern in self.family_patterns:
            if pattern.search(text):
                return name
        return OTHER_FAMILY

    def _seniority(self, text: str) -> int | None:
        for level, pattern in self.seniority_patterns:
            if pattern.search(text):
                return level
        return None

    def _core_title(self, text: str) -> str:
        text = text.split(" - ")[0].split(" / ")[0]
        for _, pattern in self.seniority_patterns:
            text = pattern.sub(" ", text)
        text = re.sub(r"[^a-z+#/ ]+", " ", text)
        return re.sub(r"\s+", " ", text).strip()

    def experience_level(self, title: object) -> str | None:
        """The experience level (EN/MI/SE/EX) a title's seniority words imply, or None."""
        level = self.seniority(title)
        return None if level is None else self.seniority_to_experience.get(level)


@lru_cache(maxsize=4)
def _rules_for(features_json: str) -> TitleRules:
    return TitleRules.from_config(FeaturesConfig.model_validate_json(features_json))


def title_rules(features: FeaturesConfig) -> TitleRules:
    """Compiled rules for a features config (cached: compiling is the slow part)."""
    return _rules_for(features.model_dump_json())
