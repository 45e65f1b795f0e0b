"""Which language a message is written in: `language_detect(text)`.

The NER model and the context rules read English only, so a message in another language must not fill the
record ("fièvre" or "Kopfschmerzen" read as a medicine). Detection uses the maintained library Lingua
(`lingua-language-detector`, Apache-2.0; n-gram models for 75 languages, offline), restricted to `LANGUAGES`:
English and the languages most often spoken in the UK after it (ONS Census 2021, "Main language in England and
Wales") plus the other major European ones, which keeps short English messages from being read as a rare
language. Its models load once, lazily, under a lock (about 1 s and 100 MB for this set).

Decision rule: a message is not English when Lingua's most likely language is another one and either most of
its letters are not Latin (Cyrillic, Arabic, Chinese ...), or that language has confidence at least
`MIN_CONFIDENCE` (0.5) while English has less than `MAX_ENGLISH` (0.2), or English has less than
`MIN_ENGLISH_WEAK` (0.1) and fewer than `MIN_KNOWN_SHARE` (60%) of the words are known English or medical words
(`english_word_share`: short messages split Lingua's confidence across related languages). A Latin-script message
with fewer than `MIN_LETTERS` letters ("ok", "HA") is too short to judge and is taken as English, and so is one
Lingua cannot place. Invisible format characters are removed first. Thresholds were set on the English messages
of the two check sets (none may be flagged) and a handful of symptom sentences in other languages (tests).
"""
from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass

from ner_engine.context.spelling import known_word, spelling_correct
from ner_engine.context.surface import abbreviations, surface_view

MIN_CONFIDENCE = 0.5
MAX_ENGLISH = 0.2
MIN_ENGLISH_WEAK = 0.1   # English this unlikely and ...
MIN_KNOWN_SHARE = 0.6    # ... fewer known English words than this: another language, however unsure Lingua is
_CONTRACTIONS = frozenset({"i'm", "i've", "i'd", "i'll", "it's", "don't", "can't", "won't", "isn't", "wasn't",
                           "haven't", "hasn't", "didn't", "doesn't", "couldn't", "shouldn't", "that's", "there's",
                           "im", "ive", "dont", "cant", "wont", "isnt", "wasnt", "havent", "hasnt", "didnt", "doesnt"})
MIN_LETTERS = 4
LANGUAGES: tuple[str, ...] = (
    "ENGLISH", "POLISH", "ROMANIAN", "PUNJABI", "URDU", "PORTUGUESE", "SPANISH", "ARABIC", "BENGALI", "GUJARATI",
    "ITALIAN", "CHINESE", "FRENCH", "LITHUANIAN", "TURKISH", "GERMAN", "RUSSIAN", "UKRAINIAN", "BULGARIAN",
    "HUNGARIAN", "GREEK", "PERSIAN", "TAMIL", "HINDI", "SOMALI", "DUTCH", "LATVIAN", "CZECH", "SLOVAK", "VIETNAMESE",
    "ALBANIAN", "SWEDISH", "DANISH", "JAPANESE", "KOREAN", "THAI", "TAGALOG", "YORUBA", "SHONA", "SWAHILI",
)


@dataclass(frozen=True)
class LanguageResult:
    """`language`: ISO 639-1 code in lower case ("en", "fr"), or "und" (undetermined: too short, or no
    language stood out); `english`: whether the message can be read as English (True for "und");
    `confidence`: Lingua's confidence in `language` (0-1; 0.0 for "und")."""

    language: str
    english: bool
    confidence: float

    def to_dict(self) -> dict:
        return {"language": self.language, "english": self.english, "confidence": self.confidence}


_detector = None
_lock = threading.Lock()


def detector():
    """The Lingua detector for `LANGUAGES` (built once). Raises ModuleNotFoundError when `lingua-language-detector`
    is not installed (requirements.txt)."""
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                # imported here: lingua's import and language models cost seconds, paid by the first detection
                from lingua import Language, LanguageDetectorBuilder

                languages = [getattr(Language, name) for name in LANGUAGES if hasattr(Language, name)]
                _detector = LanguageDetectorBuilder.from_languages(*languages).build()
    return _detector


_WORDS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def english_word_share(text: str) -> float:
    """Share of the words of `text` that are English or medical words, or misspellings of medical words (the
    known-word list and lexicon of `ner_engine.context.spelling`, the abbreviation table); 1.0 without words."""
    words = _WORDS.findall(text)
    if not words:
        return 1.0
    shorts = {a.short.lower() for a in abbreviations()}
    known = sum(w.lower() in shorts or known_word(w) or spelling_correct(w) is not None
                or w.lower().replace("’", "'") in _CONTRACTIONS for w in words)
    return known / len(words)


def language_detect(text: str) -> LanguageResult:
    """The language of a patient message and whether it is English (see the module docstring for the rule).
    Thread-safe; about 1 ms per chat message after the first call."""
    clean = surface_view(text, abbreviations=False, spelling=False).text
    letters = [char for char in clean if char.isalpha()]
    if not letters:
        return LanguageResult("und", True, 0.0)
    if len(letters) < MIN_LETTERS and all("LATIN" in unicodedata.name(char, "") for char in letters):
        return LanguageResult("und", True, 0.0)
    values = detector().compute_language_confidence_values(clean)
    letters = [char for char in clean if char.isalpha()]
    latin = sum("LATIN" in unicodedata.name(char, "") for char in letters) / len(letters)
    if not values:
        return LanguageResult("und", latin >= 0.5, 0.0)
    best = values[0]
    english = next((v.value for v in values if v.language.name == "ENGLISH"), 0.0)
    code = best.language.iso_code_639_1.name.lower()
    if best.language.name != "ENGLISH" and (
            latin < 0.5  # another script: Cyrillic, Arabic, Chinese, Devanagari ...
            or best.value >= MIN_CONFIDENCE and english < MAX_ENGLISH
            or english < MIN_ENGLISH_WEAK and english_word_share(clean) < MIN_KNOWN_SHARE):
        return LanguageResult(code, False, round(best.value, 4))
    if best.language.name == "ENGLISH":
        return LanguageResult("en", True, round(best.value, 4))
    return LanguageResult("und", True, 0.0)
