"""Term helpers shared by the vocabularies, the normaliser and the surface layer: how a term or a mention is
normalised (lower case, no punctuation), plural-stemmed and word-sorted for the vocabularies' indexes, rewritten
from lay to clinical words, which body sites it names, and which short forms a document defines.

Pure functions over strings; nothing here loads a vocabulary.
"""
from __future__ import annotations

import re

_PUNCT = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")

# Generic lay -> clinical word rewrites, applied word by word (not phrase lists: those live in the check set).
_LAY_WORDS = {
    "tummy": "abdominal", "belly": "abdominal", "stomach": "abdominal", "abdomen": "abdominal", "gut": "abdominal",
    "ache": "pain", "aches": "pain", "aching": "pain", "achy": "pain", "sore": "pain", "soreness": "pain",
    "hurts": "pain", "hurting": "pain", "hurt": "pain", "painful": "pain", "pains": "pain",
    "head": "head", "throwing": "vomiting", "puking": "vomiting", "puke": "vomiting", "barfing": "vomiting",
    "sick": "nausea", "queasy": "nausea", "runny": "rhinorrhea", "itchy": "pruritus", "itching": "pruritus",
    "itch": "pruritus", "dizzy": "dizziness", "tired": "fatigue", "tiredness": "fatigue", "exhausted": "fatigue",
    "exhaustion": "fatigue", "breathless": "dyspnea", "sleepless": "insomnia", "sweats": "sweating",
    "sweaty": "sweating", "kidney": "renal", "heart": "cardiac", "lung": "pulmonary", "liver": "hepatic",
    "skin": "skin", "swollen": "swelling", "swelled": "swelling", "bloated": "bloating", "feverish": "fever",
    "temperature": "fever", "coughing": "cough", "sneezing": "sneeze", "wheezy": "wheezing", "constipated": "constipation",
    "depressed": "depression", "anxious": "anxiety", "nauseous": "nausea", "nauseated": "nausea",
    "numb": "numbness", "tingly": "tingling", "weak": "weakness", "blurry": "blurred", "blurred": "blurred",
    "bleeding": "hemorrhage", "blood": "blood", "poo": "stool", "pee": "urine", "peeing": "urination",
    "wee": "urine", "weeing": "urination", "fainted": "syncope", "fainting": "syncope", "faint": "syncope",
    "passed": "syncope", "rash": "rash", "spots": "acne", "pimples": "acne", "zits": "acne",
    "sleep": "sleep", "trouble": "difficulty", "problems": "difficulty", "problem": "difficulty",
    "hard": "difficulty", "cant": "difficulty", "can't": "difficulty", "unable": "difficulty",
    "breathing": "breathing", "breathe": "breathing", "swallowing": "swallowing", "swallow": "swallowing",
    "flu": "influenza", "haemorrhage": "hemorrhage", "anaemia": "anemia", "oedema": "edema", "diarrhoea": "diarrhea",
    "oesophagus": "esophagus", "oesophageal": "esophageal", "tumour": "tumor", "haematuria": "hematuria",
    "paediatric": "pediatric", "dyspnoea": "dyspnea", "apnoea": "apnea", "leukaemia": "leukemia",
}
_LAY_PHRASES = (  # multi-word generic rewrites (order matters: longest first)
    ("throwing up", "vomiting"), ("threw up", "vomiting"), ("being sick", "vomiting"), ("was sick", "vomiting"),
    ("feel sick", "nausea"), ("feeling sick", "nausea"), ("short of breath", "dyspnea"),
    ("shortness of breath", "dyspnea"), ("out of breath", "dyspnea"), ("high temperature", "fever"),
    ("passed out", "syncope"), ("passing out", "syncope"), ("blocked nose", "nasal obstruction"),
    ("stuffy nose", "nasal congestion"), ("runny nose", "rhinorrhea"), ("pins and needles", "paresthesia"),
    ("head pain", "headache"), ("heart attack", "myocardial infarction"), ("high blood pressure", "hypertension"),
    ("low blood pressure", "hypotension"), ("high blood sugar", "hyperglycemia"), ("low blood sugar", "hypoglycemia"),
    # everyday names of infections and swellings (NHS Health A to Z: "Kidney infection", "Urinary tract infections
    # (UTIs)" - "water infection", "Chest infection", "Swollen ankles, feet and legs (oedema)")
    ("kidney infection", "pyelonephritis"), ("water infection", "urinary tract infection"),
    ("bladder infection", "cystitis"), ("chest infection", "lower respiratory tract infection"),
    ("swollen legs", "pedal edema"), ("legs swollen", "pedal edema"),
    ("swollen leg", "pedal edema"), ("leg swollen", "pedal edema"),
    ("leg swelling", "pedal edema"), ("legs swelling", "pedal edema"),
    ("swelling legs", "pedal edema"), ("neck stiff", "stiff neck"), ("stiff neck", "stiff neck"),
)

# Body sites, grouped: a code naming a site the mention (or the body site linked to it) does not name contradicts
# the words ("chest pain" is not "Pain in hip"; "legs are swollen" is not "Swelling of inguinal region").
_SITE_GROUPS = {
    "head": "head cephalic cranial scalp", "neck": "neck cervical nuchal", "chest": "chest thoracic thorax",
    "abdomen": "abdominal abdomen tummy stomach belly epigastric", "groin": "groin inguinal",
    "hip": "hip hips", "knee": "knee knees", "leg": "leg legs lower limb limbs thigh calf shin",
    "arm": "arm arms upper forearm", "foot": "foot feet toe toes heel", "hand": "hand hands finger fingers thumb",
    "back": "back lumbar spine spinal", "eye": "eye eyes ocular eyelid", "ear": "ear ears", "shoulder": "shoulder shoulders",
    "ankle": "ankle ankles", "wrist": "wrist wrists", "elbow": "elbow elbows", "face": "face facial", "jaw": "jaw",
    "throat": "throat pharyngeal", "kidney": "kidney kidneys renal", "bladder": "bladder vesical",
    "pelvis": "pelvis pelvic", "breast": "breast breasts nipple", "mouth": "mouth oral", "nose": "nose nasal",
}
_SITE_OF_WORD = {word: group for group, words in _SITE_GROUPS.items() for word in words.split()}


def body_sites(text: str) -> set[str]:
    """The body-site groups a text names ("Pain in hip" -> {"hip"}, "tummy ache" -> {"abdomen"})."""
    return {_SITE_OF_WORD[w] for w in term_normalise(text).split() if w in _SITE_OF_WORD}

def term_normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("'s ", " ")
    text = _PUNCT.sub(" ", text.replace("'", ""))
    return _SPACES.sub(" ", text).strip()


def _stem(word: str) -> str:
    if len(word) <= 3 or word.endswith(("ss", "us", "is", "sis")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def term_stem(normalised: str) -> str:
    return " ".join(_stem(w) for w in normalised.split())

def term_sorted(normalised: str) -> str:
    return " ".join(sorted(_stem(w) for w in normalised.split()))


def lay_rewrite(normalised: str) -> str:
    text = f" {normalised} "
    for phrase, replacement in _LAY_PHRASES:
        text = text.replace(f" {phrase} ", f" {replacement} ")
    words = [_LAY_WORDS.get(w, w) for w in text.split() if w not in ("my", "the", "a", "an", "of", "in", "i", "have", "got", "feel", "feeling", "am", "im", "is", "it")]
    text = f" {' '.join(dict.fromkeys(words))} "  # drops repeats ("pain pain")
    for phrase, replacement in _LAY_PHRASES:  # again, for phrases the word rewrites produced ("head pain")
        text = text.replace(f" {phrase} ", f" {replacement} ")
    return text.strip()


_PARENTHESIS = re.compile(r"\(\s*([A-Za-z][\w\-/]{0,9}?)s?\s*\)")


def abbreviations_find(text: str) -> dict[str, str]:
    """Short forms defined in the text, `long form (SF)` (Schwartz & Hearst 2003, simplified): the shortest
    run of words before the parenthesis whose first word starts with the short form's first letter and that
    contains its letters in order. Used for documents (e.g. abstracts); chat messages rarely define any."""
    found: dict[str, str] = {}
    for match in _PARENTHESIS.finditer(text):
        short = match.group(1)
        letters = [c.lower() for c in short if c.isalnum()]
        if not 2 <= len(letters) <= 10 or not letters[0].isalpha() or sum(c.isupper() for c in short) < 1:
            continue
        words = text[max(0, match.start() - 200):match.start()].split()
        limit = min(len(letters) + 5, 2 * len(letters))
        for size in range(1, min(limit, len(words)) + 1):
            candidate = words[-size:]
            if not candidate[0].lower().startswith(letters[0]):
                continue
            phrase = " ".join(candidate).lower()
            position = 0
            for letter in letters:
                position = phrase.find(letter, position)
                if position < 0:
                    break
                position += 1
            else:
                found.setdefault(short, " ".join(candidate).strip(",;:"))
                break
    return found
