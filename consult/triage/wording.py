"""Who the interview's questions are about, and the questions reworded for another person.

A parent or carer writes about someone else ("my 3 year old son has a barking cough", "my mum fell"): the
questions that follow address that person ("Does your son have a high temperature?"), not the writer.
`person_read` finds the person in the conversation's opening messages; `question_for` turns the interview's
second-person questions ("Do you have", "Are you", "your", "you") into the third person for them. A question it
cannot safely rewrite (one whose "you" is the writer: "anything else you have noticed") is kept, after a short
line "(Please answer for your son.)". Pure Python (never imports Django).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Relation word (as the writer says it) -> (how the questions name the person, pronoun "he" | "she" | "they").
RELATIONS: dict[str, tuple[str, str]] = {
    **{w: ("son", "he") for w in ("son", "boy", "lad")},
    **{w: ("daughter", "she") for w in ("daughter", "girl")},
    **{w: ("child", "they") for w in ("child", "kid", "toddler", "little one")},
    **{w: ("baby", "they") for w in ("baby", "newborn", "infant")},
    **{w: (w, "she") for w in ("mum", "mom", "mother", "mam", "mummy", "wife", "grandma", "grandmother", "nan",
                               "nana", "granny", "sister", "girlfriend", "aunt", "auntie")},
    **{w: (w, "he") for w in ("dad", "father", "daddy", "husband", "grandad", "grandpa", "grandfather", "brother",
                              "boyfriend", "uncle")},
    **{w: (w, "they") for w in ("partner", "friend", "flatmate", "housemate")},
}
_PRONOUNS = {  # subject -> (object, possessive, reflexive)
    "he": ("him", "his", "himself"), "she": ("her", "her", "herself"), "they": ("them", "their", "themselves"),
}
_NUMBER = r"(?:\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a)"
_AGE = rf"{_NUMBER}[\s-]*(?:years?|yrs?|months?|weeks?|days?|y/?o)(?:[\s-]*old)?"
_RELATION_WORDS = "|".join(sorted((re.escape(w) for w in RELATIONS), key=len, reverse=True))
# "my 3 year old son", "our little girl", "my elderly mum", "my 3 year old" (a child of that age); not a relative's
# past history ("my dad had a heart attack at 50"), which is the writer's family history.
_OTHER = re.compile(
    rf"\b(?:my|our)\s+(?P<age>{_AGE}\s*)?(?:(?:little|eldest|oldest|youngest|elderly|old|teenage)\s+)*"
    rf"(?P<relation>{_RELATION_WORDS})?\b(?!\s+(?:had(?!\s+a\s+fall)|died|passed|suffered)\b)", re.IGNORECASE)
# The writer's own symptoms: "I have", "I've got", "I feel", "I'm dizzy" (not "I'm worried about my son"), "my head".
_SELF = re.compile(
    r"\bi\s*(?:'m|am)\s+(?!worried|concerned|asking|writing|calling|messaging|here\b|a\s|an\s|his\b|her\b|their\b)"
    r"|\bi\s*(?:'ve|have)\s+(?!a\s+(?:question|query|son|daughter|child|baby)|got\s+a\s+(?:question|son|daughter|child|baby))"
    r"|\bi\s+(?:had|get|got|feel|felt|keep|can'?t|cannot|fell|hurt|woke|vomited|threw|think\s+i)\b"
    r"|\bmy\s+(?:head|chest|stomach|tummy|throat|back|neck|legs?|arms?|ears?|eyes?|skin|heart|knees?|feet|foot|"
    r"hands?|face|nose|mouth|belly|side|periods?|pee|poo|urine|wrists?|ankles?|hips?|shoulders?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Person:
    """Someone other than the writer whom the questions are about: `noun` names them ("your son"), `subject` is
    their pronoun ("he" | "she" | "they")."""

    noun: str
    subject: str

    @property
    def object(self) -> str:
        return _PRONOUNS[self.subject][0]

    @property
    def possessive(self) -> str:
        return _PRONOUNS[self.subject][1]

    @property
    def reflexive(self) -> str:
        return _PRONOUNS[self.subject][2]

    @property
    def prefix(self) -> str:
        """The line before a question that could not be rewritten."""
        return f"(Please answer for {self.noun}.)"


def person_read(turns: Iterable) -> Person | None:
    """The person the conversation is about, or None for the writer themself. `turns`: objects with `text` (str)
    and `answered` (the question id a message answered, None for the opening); only the opening and answers to
    the complaint question are read. Whichever comes first in them decides: the writer's own symptoms ("I have
    ...") or another person as the one affected ("my 3 year old son has ...")."""
    for turn in turns:
        if getattr(turn, "answered", None) not in (None, "complaint"):
            continue
        text = turn.text or ""
        own = _SELF.search(text)
        other = next((m for m in _OTHER.finditer(text) if m.group("relation") or m.group("age")), None)
        if other is not None and (own is None or other.start() < own.start()):
            if other.group("relation"):
                noun, subject = RELATIONS[other.group("relation").lower()]
            else:
                noun, subject = "child", "they"  # "my 3 year old"
            return Person(f"your {noun}", subject)
        if own is not None:
            return None
    return None


# Parentheses that address a writer asking for someone else: not needed once the question names the person.
_ASIDE = re.compile(r"\s*\((?:or the (?:person|child)\b[^)]*|if you are asking for someone else[^)]*)\)", re.IGNORECASE)
# A "you" that is the writer, not the person: such a question is kept, after `Person.prefix`.
_WRITER = re.compile(
    r"\b(?:else you have noticed|worries you|responding to you|when you press|if you (?:don'?t know|can'?t say|"
    r"are not sure|'re not sure)|your own words|the reason you are|you are (?:asking|getting in touch)|you remember|"
    r"you can keep)\b", re.IGNORECASE)
_AUX_THIRD = {"do": "does", "does": "does", "are": "is", "have": "has", "were": "was", "did": "did", "can": "can",
              "could": "could", "would": "would", "will": "will", "should": "should"}
_AUX_THEY = {"does": "do", "is": "are", "has": "have", "was": "were"}
_MODAL = {"did", "can", "cannot", "can't", "could", "would", "might", "will", "should", "must", "may", "had", "felt",
          "got", "went", "ate", "took", "fell", "lost", "started", "suddenly"}
_VERBS = ("have|are|were|do|did|can|cannot|can't|could|would|might|will|should|must|may|had|need|feel|felt|get|got|"
          "breathe|chew|cough|move|pee|poo|press|rest|sit|try|wake|look|stop|think|know|go|eat|drink|take|use|walk|"
          "talk|sleep|lie|stand|bend|swallow|see|hear|smell|notice|lost|started|fell|went|ate|took|open|lift|turn|"
          "touch|lean|strain|sneeze|vomit|smoke|live|work|exercise|eat|weigh")
# Verbs that may follow the first in a list ("when you cough, sneeze or bend over"): no auxiliaries.
_LEXICAL = "|".join(v for v in _VERBS.split("|") if v not in _MODAL and v not in ("have", "are", "were", "do"))
_ADVERB = r"(?:suddenly|still|ever|also|usually|often|really|just|sometimes|always|never|only|already)"
# Words after which "you" is an object ("make you want", "stopping you from", "to you").
_OBJECT_AFTER = ("to|for|with|at|about|from|on|near|around|make|makes|made|stop|stops|stopping|keep|keeps|keeping|"
                 "help|helps|let|lets|bother|bothers|hurt|hurts|told|tell|wake|wakes|give|gives|gave|hit|cause|causes|"
                 "affect|affects|prevent|prevents|prevented|than|speed")
_SECOND = re.compile(
    rf"\b(?P<noticed>have\s+you\s+noticed)\b"
    rf"|\b(?P<aux>{'|'.join(_AUX_THIRD)})\s+you\b(?!['’])"
    rf"|\b(?P<before>{_OBJECT_AFTER})\s+you\b(?!['’])"
    rf"|\byou(?P<contraction>['’](?:re|ve|ll|d))"
    rf"|\byou\s+(?P<adverb>{_ADVERB}\s+)?(?P<verb>{_VERBS})\b"
    rf"(?P<more>(?:(?:\s+[a-z]+){{0,2}}(?:,|\s+or|\s+and)\s+(?:{_LEXICAL})\b)*)"
    rf"|\byou(?=\s+or\b)"
    rf"|\b(?P<reflexive>yourself)\b"
    rf"|\b(?P<possessive>your)\b", re.IGNORECASE)
_LEFTOVER = re.compile(r"\byou(?:r|rs|rself|rselves)?\b|\byou['’]", re.IGNORECASE)
_MORE = re.compile(rf"((?:,|\s+or|\s+and)\s+)({_LEXICAL})\b", re.IGNORECASE)


def _third(verb: str, they: bool) -> str:
    """`verb` as the third person says it: "have" -> "has" ("have" for they), "press" -> "presses"."""
    lower = verb.lower()
    if they or lower in _MODAL:
        return verb
    irregular = {"have": "has", "are": "is", "were": "was", "do": "does", "go": "goes"}
    if lower in irregular:
        return irregular[lower]
    if lower.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _capital(like: str, text: str) -> str:
    return text[:1].upper() + text[1:] if like[:1].isupper() else text


def question_for(text: str, person: Person | None) -> str:
    """`text`, an interview question in the second person, reworded for `person` (None: unchanged): the first
    mention names them ("Do you have" -> "Does your son have", "your neck" -> "your son's neck"), later ones use
    their pronoun ("Have you" -> "has he", "your" -> "his", "you" as an object -> "him"). A question whose "you"
    is the writer, or that keeps a "you" no rule covers, is returned unchanged after `person.prefix` on its own
    line."""
    if person is None or not _LEFTOVER.search(text):
        return text
    plain = _ASIDE.sub("", text).replace("the reason you are getting in touch", "the reason for getting in touch")
    if _WRITER.search(plain):
        return f"{person.prefix}\n{text}"
    they = person.subject == "they"
    named = False

    def who(kind: str) -> str:
        """The person as subject, object or possessive: their noun at the first mention, else a pronoun."""
        nonlocal named
        first, named = not named, True
        if first:  # a placeholder until the leftover check: the noun says "your" itself
            return "\0's" if kind == "possessive" else "\0"
        return {"subject": person.subject, "object": person.object, "possessive": person.possessive}[kind]

    def replace(m: re.Match) -> str:
        if m.group("aux"):
            aux = _AUX_THIRD[m.group("aux").lower()]
            subject = who("subject")
            if subject == "they":
                aux = _AUX_THEY.get(aux, aux)
            return _capital(m.group("aux"), f"{aux} {subject}")
        if m.group("before"):
            return f"{m.group('before')} {who('object')}"
        if m.group("contraction"):
            subject, ending = who("subject"), m.group("contraction")[1:].lower()
            if subject == "they":
                return _capital(m.group(0), f"they'{ending}")
            full = {"re": "is", "ve": "has", "ll": "will", "d": "would"}[ending]
            return _capital(m.group(0), f"{subject} {full}")
        if m.group("noticed"):
            return _capital(m.group(0), "has anyone noticed")  # "Has anyone noticed blood in your son's poo?"
        if m.group("verb"):
            subject = who("subject")
            they = subject == "they"
            more = _MORE.sub(lambda v: v.group(1) + _third(v.group(2), they), m.group("more") or "")
            return _capital(m.group(0), f"{subject} {m.group('adverb') or ''}{_third(m.group('verb'), they)}{more}")
        if m.group("reflexive"):
            return person.reflexive
        if m.group("possessive"):
            return _capital(m.group(0), who("possessive"))
        return _capital(m.group(0), who("subject"))  # "you or the room"

    rewritten = _SECOND.sub(replace, plain)
    if _LEFTOVER.search(rewritten) or not named:  # a "you" left, or a question that no longer names the person
        return f"{person.prefix}\n{text}"
    return re.sub(r"(^|(?<=[.?!]\s))\0", lambda m: person.noun[:1].upper() + person.noun[1:], rewritten).replace(
        "\0", person.noun)
