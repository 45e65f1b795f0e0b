"""Issue 13 kind 12: messages that are not English are recognised (and short English ones are not flagged)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ner_engine.context import language_detect
from ner_engine.context.language import english_word_share

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from _check_sets import assertion_check_load, coding_check_load  # noqa: E402


@pytest.mark.parametrize("text, language", [
    ("j'ai mal à la tête et de la fièvre", "fr"),     # the inputs
    ("Kopfschmerzen", "de"),
    ("Ich habe Kopfschmerzen", "de"),
    ("Tengo dolor de cabeza y fiebre", "es"),
    ("Mam gorączkę i kaszel", "pl"),
    ("Baş ağrım var", "tr"),
    ("У меня болит голова", "ru"),
    ("我头疼", "zh"),
    ("أعاني من صداع", "ar"),
    ("J'ai de la fièvre depuis hier", "fr"),
])
def test_other_languages_are_not_english(text, language):
    result = language_detect(text)
    assert not result.english and result.language == language, result


@pytest.mark.parametrize("text", [
    "I have a headache", "ok", "HA", "yes", "SOB and CP", "I have a bad hedache and diarrea since monday.",
    "Had n/v all night and a bad HA.", "fever", "I take paracetamol 500mg", "I have a\u200bheadache", "",
])
def test_english_and_too_short_messages_pass(text):
    result = language_detect(text)
    assert result.english, result
    assert result.to_dict()["language"] in ("en", "und")


def test_no_check_set_message_is_flagged():
    messages = [m for _, m, _ in assertion_check_load()] + [r["message"] for r in coding_check_load()]
    flagged = [m for m in messages if not language_detect(m).english]
    assert flagged == []


def test_english_word_share():
    assert english_word_share("I have a bad hedache") == 1.0
    assert english_word_share("Ik heb koorts") < 0.6
