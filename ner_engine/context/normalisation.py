"""Normalisation of entity text to codes with a preferred name: the `Normaliser`.

Entity types search the vocabularies of `SYSTEMS_BY_TYPE` (`ner_engine.context.vocabularies`, loaded from pip
packages): SYMPTOM -> HPO, DISEASE -> MeSH and ICD-10-CM, plus HPO for diseases that patients describe as a
phenotype ("high blood pressure"), DRUG -> DrugBank and MeSH ids. Each vocabulary is built lazily, once, under a
lock. Terms and mentions are normalised, stemmed and rewritten by `ner_engine.context.terms`.

Matching, best first: exact normalised term (1.0), plural-stemmed term (0.97), same words in another order
(0.95), the same after generic lay rewrites such as tummy->abdominal, ache->pain (0.93), noun forms of a
trailing adjective (0.9), restatements: "<drug>-induced X" as "drug induced X" (0.9) or X (0.88), and
"<organ> <generic problem>" ("renal damage", "kidney problems") as "<organ> diseases/disorders" (0.86), a
longer term the phrase starts (0.85), the head of the phrase without leading modifiers (0.85 * share of
words kept, at least 0.6), then rapidfuzz token similarity (0.9 * ratio). Mention -> code dictionaries learned
from a corpus's training annotations (`ner_engine.context.dictionaries`) add terms to the vocabularies.

Embedding similarity is the third signal (`ner_engine.context.embeddings`: the pretrained all-MiniLM-L6-v2
sentence encoder, mean pooling, L2 norm; term matrices cached on disk), for symptoms and diseases. Per
vocabulary: when the best lexical score reaches `LEXICAL_CONFIDENT` (0.93: an exact, stemmed, reordered or
rewritten term) the lexical candidates stand alone and nothing is embedded; otherwise the mention (after the lay
rewrites) is embedded once and the terms with cosine >= the entity type's `EMBEDDING_THRESHOLDS` t (0.8; drugs
have none, see there) join the candidates with score 0.8 + 0.1 * (cos - t) / (1 - t):
at the threshold like the weakest lexical match kept, at most like a good fuzzy one, always below a confident
lexical match. A concept found both ways keeps the higher score. Thresholds were chosen on BC5CDR train+dev
mentions and the dev half of the lay check set only (`bench/context_eval.py`).

Candidates below `threshold` are dropped, so an entity with no good match stays uncoded.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from rapidfuzz import fuzz, process

from ner_engine.context.dictionaries import DictionaryEntry, dictionaries_installed
from ner_engine.context.embeddings import EmbeddingIndex, SentenceEncoder, cache_dir, embeddings_mode, index_load
from ner_engine.context.terms import lay_rewrite, term_normalise, term_sorted, term_stem
from ner_engine.context.vocabularies import Concept, Vocabulary, vocabularies_build, vocabulary_key

SYSTEMS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "SYMPTOM": ("HPO",),
    "DISEASE": ("MeSH", "ICD-10-CM", "HPO"),
    "DRUG": ("DrugBank", "MeSH-drug"),
}
DEFAULT_THRESHOLD = 0.8
LEXICAL_CONFIDENT = 0.93  # a lexical match this good is not second-guessed by embeddings
# Cosine thresholds per entity type; a type left out is matched lexically only. Not DRUG: the encoder splits
# drug names into word pieces, and on BC5CDR train+dev chemicals the neighbours it adds are right 10-47% of the
# time below cosine 0.9, while at 0.95 they code 11 more of 10,463 mentions: no gain worth a forward pass.
EMBEDDING_THRESHOLDS: dict[str, float] = {"SYMPTOM": 0.8, "DISEASE": 0.8}
EMBEDDING_TOP_K = 10

_STOP_PREFIX = re.compile(
    r"^(?:(?:my|his|her|their|our|your|the|a|an|some|bit of|a bit of|bad|really|very|constant|terrible|"
    r"awful|horrible|mild|severe|slight|little|sudden|little bit of|lot of|lots of|kind of|sort of|"
    r"this|that|these|those|recurring|persistent|chronic|acute|occasional)\s+)+")

# Words that make a longer term no more specific than the mention: "diabetes" -> "diabetes mellitus" is the same
# concept, "diabetes" -> "diabetes insipidus" is not (an unspecified mention gets the unspecified concept).
UNSPECIFYING_WORDS = frozenset({"mellitus", "disease", "diseases", "disorder", "disorders", "syndrome", "unspecified",
                                "nos", "condition", "conditions", "site", "not", "specified", "elsewhere",
                                "classified", "of", "the", "nonspecific", "general", "generalized", "generalised",
                                # a drug's salt or preparation names the same substance: "levothyroxine" is
                                # "levothyroxine sodium", "contrast" "contrast media"
                                "sodium", "potassium", "calcium", "magnesium", "hydrochloride", "acetate",
                                "sulfate", "sulphate", "phosphate", "citrate", "anhydrous", "media", "medium"})


def _more_specific(query: str, term: str) -> bool:
    """The term adds words that narrow the mention ("sleep" -> "sleep apnea", "blood pressure" -> "low blood
    pressure"), i.e. it names a more specific concept than the mention."""
    query_words = set(query.split())
    extra = set(term.split()) - query_words
    return bool(extra - UNSPECIFYING_WORDS)


# Qualifiers that state an abnormal value of what they qualify: "Blood Pressure, Low", "Breath, Shortness" name a
# finding that the bare "blood pressure" or "breath" does not state (stemmed as the vocabularies' terms are).
_VALUE_WORDS = frozenset(("low", "high", "raised", "elevated", "increased", "decreased", "reduced", "shortness",
                          "short", "loss", "lack", "absent", "absence", "abnormal", "poor", "excessive", "deficiency",
                          "insufficiency", "difficulty", "impaired", "disturbed"))


# An adjectival qualifier: "Fibrillation, Atrial" is the heading "Atrial Fibrillation" permuted, a kind of the head.
_ADJECTIVE = re.compile(r"(?:al|ic|ar|ous|ive|ile|ine|oid)$")


def _narrows(query: str, term: str, vocabulary: Vocabulary) -> bool:
    """The term names a narrower concept than the (stemmed) mention, or another one. Its added words do not narrow
    when they are unspecifying ("mellitus", "disease", a salt), when they qualify the mention's own word in a
    term the vocabulary writes inverted, being part of the concept's name ("Weakness, Muscle" for Muscle
    Weakness, "Toxicity, Drug" for Drug-Related Side Effects ...; not the whole name: "Antibiotics, Carbapenem"
    is Carbapenems) or an adjective ("Fibrillation, Atrial"), but not a value ("Blood Pressure, Low"); or when
    they are the name a short mention stands for ("TIA" -> "TIA (Transient Ischemic Attack)"). Still narrowing:
    "COVID, Long Haul" (Post-Acute COVID-19 Syndrome), "Pills, Sleeping", "sleep apnea", "diabetes insipidus"."""
    if not _more_specific(query, term):
        return False
    query_words = set(query.split())
    head = vocabulary.heads.get(term)
    qualifier = set(term.split()) - query_words
    if head is not None and set(head.split()) <= query_words and not qualifier & _VALUE_STEMS and (
            all(_ADJECTIVE.search(word) for word in qualifier) or any(
                qualifier < set(term_stem(term_normalise(vocabulary.concepts[i].name)).split())
                for i in vocabulary.stemmed.get(term, ()))):
        return False
    rest = term[len(query) + 1:] if term.startswith(query + " ") else ""
    if rest and _abbreviates(query, rest):
        alias = vocabulary.stemmed.get(rest, ())
        if set(alias) & set(vocabulary.stemmed.get(term, ())):
            return False
    return True


def _abbreviates(short: str, long: str) -> bool:
    """`short` may abbreviate `long`: one word, of at most 5 characters ("csa" before "cyclosporine", "3tc" before
    "lamivudine") or with its characters in order in `long`, the first one first ("ald" of "adrenoleukodystrophy";
    not "abdominal" of "bloating")."""
    if " " in short or len(short) >= len(long):
        return False
    if len(short) <= 5:
        return True
    if short[:1] != long[:1]:
        return False
    remaining = iter(long)
    return all(char in remaining for char in short)


_VALUE_STEMS = frozenset(term_stem(w) for w in _VALUE_WORDS)  # one word each


_ADJECTIVE_SUFFIXES = (("tensive", "tension"), ("emic", "emia"), ("aemic", "aemia"), ("eptic", "epsy"),
                       ("otic", "osis"), ("itic", "itis"), ("ic", "ia"), ("ive", "ion"), ("al", ""), ("ous", "osis"),
                       ("etic", "es"), ("ities", "ity"), ("toxic", "toxicity"), ("ic", "y"))


def _adjective_variants(normalised: str) -> list[str]:
    """Noun forms of a trailing adjective: hypertensive -> hypertension, ischemic -> ischemia, epileptic ->
    epilepsy, diabetic -> diabetes, psychotic -> psychosis, hepatitic -> hepatitis."""
    words = normalised.split()
    if not words:
        return []
    head, last = words[:-1], words[-1]
    variants = []
    for suffix, replacement in _ADJECTIVE_SUFFIXES:
        if last.endswith(suffix) and len(last) > len(suffix) + 3:
            variants.append(" ".join([*head, last[: -len(suffix)] + replacement]))
    return variants


# "<cause>-induced X" names X caused by a drug: MeSH files some such X apart ("Dyskinesia, Drug-Induced").
_INDUCED = re.compile(r"^(?:.+? )?(?:induced|provoked|triggered) (?P<finding>.+)$")
# Generic "problem" heads after an organ: MeSH's heading for them is the organ's "... Diseases" (or
# "... Disorders"): "renal damage", "kidney problems" -> Kidney Diseases, "memory impairment" -> Memory Disorders.
_PROBLEM_HEADS = frozenset({"damage", "injury", "injuries", "dysfunction", "dysfunctions", "impairment", "impairments",
                            "toxicity", "toxicities", "problem", "problems", "trouble", "troubles", "issue", "issues",
                            "disorder", "disorders", "disease", "diseases", "abnormality", "abnormalities",
                            "complication", "complications", "disturbance", "disturbances", "deficit", "deficits",
                            "difficulty", "difficulties"})
_ORGAN_NOUNS = {"renal": "kidney", "nephric": "kidney", "hepatic": "liver", "cardiac": "heart", "pulmonary": "lung",
                "gastric": "stomach", "cerebral": "brain", "ocular": "eye", "cutaneous": "skin", "dermal": "skin",
                "visual": "vision", "bladder": "urinary bladder", "thyroidal": "thyroid", "splenic": "spleen",
                "pancreatic": "pancreatic", "intestinal": "intestinal", "vascular": "vascular"}


def _restated(normalised: str) -> list[tuple[str, float]]:
    """Other names for a phrase no term matched: the finding of "<drug>-induced <finding>" (as MeSH's
    "drug induced <finding>" first), and "<organ> diseases / disorders" for "<organ> <generic problem>"."""
    variants: list[tuple[str, float]] = []
    induced = _INDUCED.match(normalised)
    if induced:
        variants += [(f"drug induced {induced['finding']}", 0.9), (induced["finding"], 0.88)]
    words = normalised.split()
    if len(words) >= 2 and words[-1] in _PROBLEM_HEADS:
        organ = " ".join(_ORGAN_NOUNS.get(w, w) for w in words[:-1])
        variants += [(f"{organ} diseases", 0.86), (f"{organ} disorders", 0.86)]
    return variants


def _fuzzy_ratio(query: str, choice: str, **kwargs) -> float:
    """Word-order-free similarity that credits a query contained in a longer term ("diabetes" in "diabetes
    mellitus") less than a full match."""
    return 0.4 * fuzz.token_set_ratio(query, choice) + 0.6 * fuzz.token_sort_ratio(query, choice)


def _fuzzy_contradicts(query: str, term: str, vocabulary: Vocabulary) -> bool:
    """A fuzzy match the words contradict: the term narrows the mention (`_narrows`: "blood pressure" ->
    "low blood pressure"), or a word of one has no close word in the other ("renal infection" -> "reinfection";
    a typo within 80% similarity, or a compound written apart, "glomerular sclerosis"/"glomerulosclerosis",
    counts as close). A term whose words are all, as they are, in the mention is broader, not contradicting
    ("brain hemangioblastoma" -> "hemangioblastoma")."""
    if _narrows(query, term, vocabulary) and len(query.split()) < len(term.split()):
        return True
    query_words = query.split()
    pairs = [(query_words[i], query_words[i + 1]) for i in range(len(query_words) - 1)]
    term_words = [w for w in term.split() if w not in UNSPECIFYING_WORDS]  # "re infection": "re" counts
    covered: set[str] = set()
    for word in term_words:
        if word in query_words:
            covered.add(word)
            continue
        close = [q for q in query_words if _words_close(word, q)]
        close += [q for pair in pairs if _compound(word, pair) for q in pair]
        if not close:
            return True
        covered.update(close)
    if all(word in query_words for word in term_words):
        return False
    return any(word not in covered and not any(_words_close(word, t) for t in term.split())
               for word in query_words if len(word) > 2 and word not in UNSPECIFYING_WORDS)


def _compound(word: str, pair: tuple[str, str]) -> bool:
    """`word` is the two words of `pair` written as one: it starts as the first, ends as the second, and is close
    to them joined ("glomerulosclerosis" for "glomerular sclerosis"; not "reinfection" for "renal infection")."""
    first, second = pair
    return (word.startswith(first[:4]) and word.endswith(second[-4:])
            and _words_close(word, first + second))


def _words_close(a: str, b: str) -> bool:
    """The same word give or take a typo (80% similar: not "sleep"/"sleeping", "infection"/"reinfection")."""
    return a == b or fuzz.ratio(a, b) >= 80


class Normaliser:
    """`normalise(text, entity_type)` -> ranked candidates [{system, code, name, score}], all >= threshold.

    Vocabularies load on first use of their system, once, under a lock; afterwards calls are read-only and
    thread-safe. `vocabularies` injects ready-made ones (tests), used as they are. `dictionaries` are mention ->
    code entries learned from a corpus's training annotations (`ner_engine.context.dictionaries`), added to
    every vocabulary built here; None (the default) reads those installed in `dictionaries_dir()`, () none.
    A system that only dictionaries provide (OMIM from NCBI-disease) becomes a vocabulary of its own.

    `embeddings` is `auto` (use the term-embedding caches found in `cache_directory`, build none), `build`
    (build missing caches on first use: minutes per large vocabulary) or `off`; None reads
    `NER_CONTEXT_EMBEDDINGS` (default `auto`). The encoder loads only when some cache is used."""

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, fuzzy: bool = True, top_k: int = 5,
                 vocabularies: Mapping[str, Vocabulary] | None = None,
                 dictionaries: Iterable[DictionaryEntry] | None = None,
                 embeddings: str | None = None, encoder: SentenceEncoder | None = None,
                 embedding_thresholds: Mapping[str, float] | None = None,
                 cache_directory: str | Path | None = None) -> None:
        self.threshold = threshold
        self.fuzzy = fuzzy
        self.top_k = top_k
        self._vocabularies: dict[str, Vocabulary] = dict(vocabularies or {})
        self._dictionaries: list | None = None if dictionaries is None else list(dictionaries)
        self._lock = threading.Lock()
        self.embeddings = embeddings_mode() if embeddings is None else embeddings
        if self.embeddings not in ("auto", "build", "off"):
            raise ValueError(f"embeddings={embeddings!r}: expected auto, build or off")
        self.encoder = encoder or SentenceEncoder()
        self.embedding_thresholds = dict(EMBEDDING_THRESHOLDS if embedding_thresholds is None else embedding_thresholds)
        self.cache_directory = Path(cache_directory) if cache_directory is not None else cache_dir()
        self._indexes: dict[str, EmbeddingIndex | None] = {}
        self._embedding_lock = threading.Lock()

    def dictionary_entries(self) -> list:
        if self._dictionaries is None:
            with self._lock:
                if self._dictionaries is None:
                    self._dictionaries = dictionaries_installed()
        return self._dictionaries

    def systems(self, entity_type: str) -> tuple[str, ...]:
        """Vocabulary keys searched for a type: the packaged ones, then those only dictionaries provide."""
        packaged = SYSTEMS_BY_TYPE.get(entity_type, ())
        extra = sorted({vocabulary_key(e.entity_type, e.system) for e in self.dictionary_entries()
                        if e.entity_type == entity_type} - set(packaged))
        return (*packaged, *extra)

    def vocabulary(self, system: str) -> Vocabulary:
        found = self._vocabularies.get(system)
        if found is not None:
            return found
        entries = self.dictionary_entries()
        with self._lock:
            if system not in self._vocabularies:
                for key, vocabulary in vocabularies_build(system).items():
                    synonyms = {e.term: e.code for e in entries
                                if vocabulary_key(e.entity_type, e.system) == key}
                    if synonyms:
                        vocabulary.add_synonyms(synonyms, new_concepts=True)
                    self._vocabularies[key] = vocabulary
            return self._vocabularies[system]

    def embedding_index(self, system: str) -> EmbeddingIndex | None:
        """The term embeddings of a vocabulary (loaded once; built first in `build` mode), or None when
        embeddings are off or, in `auto` mode, not cached for this vocabulary and encoder."""
        if self.embeddings == "off":
            return None
        if system in self._indexes:
            return self._indexes[system]
        vocabulary = self.vocabulary(system)
        with self._embedding_lock:
            if system not in self._indexes:
                terms = list(vocabulary.exact)
                self._indexes[system] = index_load(system, terms, [vocabulary.exact[t] for t in terms], self.encoder,
                                                   directory=self.cache_directory, build=self.embeddings == "build")
        return self._indexes[system]

    def embedding_systems(self) -> list[str]:
        """The vocabularies searched by embedding: those of the entity types that have a threshold."""
        if self.embeddings == "off":
            return []
        return list(dict.fromkeys(system for entity_type in self.embedding_thresholds
                                  for system in self.systems(entity_type)))

    def embeddings_warm(self) -> int:
        """Load (or in `build` mode build) the embedding indexes of `embedding_systems()`, and the encoder when
        any is used, so that the first message pays for neither; returns how many indexes are in use."""
        found = sum(self.embedding_index(system) is not None for system in self.embedding_systems())
        if found:
            self.encoder.encode(["warm up"])
        return found

    def normalise(self, text: str, entity_type: str, *, systems: Iterable[str] | None = None,
                  threshold: float | None = None, query: "_Query | None" = None) -> list[dict]:
        threshold = self.threshold if threshold is None else threshold
        query = query or _Query(self.encoder, text)
        results: list[dict] = []
        for system in systems or self.systems(entity_type):
            for score, concept in self.candidates(system, text, entity_type, query=query)[: self.top_k]:
                if score >= threshold:
                    results.append({"system": "MeSH" if system == "MeSH-drug" else system, "code": concept.code,
                                    "name": concept.name, "score": round(score, 4)})
        results.sort(key=lambda c: -c["score"])
        return results

    def normalise_many(self, mentions: Sequence[tuple[str, str]], *,
                       threshold: float | None = None) -> list[list[dict]]:
        """`normalise` for each (text, entity_type) of one message, embedding in one batch the mentions that
        need it (one forward pass for a message's mentions costs much less than one each)."""
        queries = [_Query(self.encoder, text) for text, _ in mentions]
        wanted = [query for (text, entity_type), query in zip(mentions, queries)
                  if any(self._embedding_wanted(system, text, entity_type, query)
                         for system in self.systems(entity_type))]
        _Query.encode_together(self.encoder, wanted)
        return [self.normalise(text, entity_type, threshold=threshold, query=query)
                for (text, entity_type), query in zip(mentions, queries)]

    def _lexical(self, system: str, text: str, query: "_Query") -> list[tuple[float, Concept]]:
        found = query.lexical.get(system)
        if found is None:
            found = query.lexical[system] = self.match(self.vocabulary(system), text)
        return found

    def _embedding_wanted(self, system: str, text: str, entity_type: str, query: "_Query") -> bool:
        if self.embeddings == "off" or entity_type not in self.embedding_thresholds:
            return False
        lexical = self._lexical(system, text, query)
        return not (lexical and lexical[0][0] >= LEXICAL_CONFIDENT) and self.embedding_index(system) is not None

    def candidates(self, system: str, text: str, entity_type: str, *,
                   query: "_Query | None" = None) -> list[tuple[float, Concept]]:
        """Lexical candidates of one vocabulary, joined by embedding neighbours when the best lexical score is
        below `LEXICAL_CONFIDENT` (see the module docstring); best first, no threshold. `query` carries the
        mention's lexical matches and embedding from one call to the next."""
        query = query or _Query(self.encoder, text)
        lexical = self._lexical(system, text, query)
        if not self._embedding_wanted(system, text, entity_type, query):
            return lexical
        vocabulary = self.vocabulary(system)
        index = self.embedding_index(system)
        cutoff = self.embedding_thresholds[entity_type]
        vector = query.vector()
        if vector is None:
            return lexical
        scores: dict[Concept, float] = {}
        for score, concept in lexical:
            scores.setdefault(concept, score)
        for cosine, position in index.search(vector, EMBEDDING_TOP_K):
            if cosine < cutoff:
                break
            concept = vocabulary.concepts[position]
            score = DEFAULT_THRESHOLD + 0.1 * (cosine - cutoff) / max(1.0 - cutoff, 1e-6)
            if scores.get(concept, 0.0) < score:
                scores[concept] = score
        return sorted(((score, concept) for concept, score in scores.items()), key=lambda item: -item[0])

    def match(self, vocabulary: Vocabulary, text: str) -> list[tuple[float, Concept]]:
        """Every lexical candidate concept with its score, best first (no threshold)."""
        scores: dict[int, float] = {}

        def offer(indices: Iterable[int], score: float) -> None:
            for index in indices:
                if scores.get(index, 0.0) < score:
                    scores[index] = score

        normalised = term_normalise(text)
        stripped = _STOP_PREFIX.sub("", normalised) or normalised
        for query, penalty in ((normalised, 0.0), (stripped, 0.01)):
            offer(vocabulary.exact.get(query, ()), 1.0 - penalty)
            offer(vocabulary.stemmed.get(term_stem(query), ()), 0.97 - penalty)
            offer(vocabulary.unordered.get(term_sorted(query), ()), 0.95 - penalty)
        rewritten = lay_rewrite(stripped)
        if rewritten and rewritten != stripped:
            offer(vocabulary.stemmed.get(term_stem(rewritten), ()), 0.93)
            offer(vocabulary.unordered.get(term_sorted(rewritten), ()), 0.92)
        if not scores or max(scores.values()) < 0.9:
            for variant in _adjective_variants(stripped):  # "hypertensive" -> "hypertension"
                offer(vocabulary.stemmed.get(term_stem(variant), ()), 0.9)
        if not scores or max(scores.values()) < 0.9:
            for variant, score in _restated(rewritten or stripped):
                offer(vocabulary.stemmed.get(term_stem(variant), ())
                      or vocabulary.unordered.get(term_sorted(variant), ()), score)
        if not scores or max(scores.values()) < 0.9:
            prefix = term_stem(rewritten or stripped)
            longer = [p for p in vocabulary.word_index.get(prefix.split()[-1] if prefix else "", ())
                      if vocabulary.term_list[p].startswith(prefix + " ")]
            # only terms that add no narrowing word: "diabetes" -> "diabetes mellitus", not "diabetes insipidus"
            longer = [p for p in longer if not _narrows(prefix, vocabulary.term_list[p], vocabulary)]
            longer = [p for p in longer if p in vocabulary.name_positions] or longer  # preferred names first
            if longer and len(longer) < 200:  # "diabetes" -> "diabetes mellitus" (shortest such term)
                shortest = min(longer, key=lambda p: len(vocabulary.term_list[p]))
                offer(vocabulary.term_concepts[shortest], 0.85)
        if not scores:
            words = (rewritten or stripped).split()
            for drop in range(1, len(words)):  # "acute toxic hepatitis" -> "toxic hepatitis" -> "hepatitis"
                head = " ".join(words[drop:])
                found = vocabulary.stemmed.get(term_stem(head)) or vocabulary.unordered.get(term_sorted(head))
                if found:
                    offer(found, max(0.6, 0.85 * (len(words) - drop) / len(words) + 0.15 * (drop == 1)))
                    break
        if self.fuzzy and (not scores or max(scores.values()) < 0.93):
            for query in dict.fromkeys(q for q in (term_stem(stripped), term_stem(rewritten)) if q):
                positions = vocabulary.fuzzy_candidates(query)
                if not positions:
                    continue
                choices = [vocabulary.term_list[p] for p in positions]
                for choice, _, found in process.extract(query, choices, scorer=fuzz.token_set_ratio, limit=20,
                                                        score_cutoff=60):
                    if _fuzzy_contradicts(query, choice, vocabulary):
                        continue
                    offer(vocabulary.term_concepts[positions[found]], 0.9 * _fuzzy_ratio(query, choice) / 100)
        preferred = {vocabulary.preferred.get(q) for q in (term_stem(normalised), term_stem(stripped))} - {None}
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0] not in preferred,
                                                          len(vocabulary.concepts[item[0]].name)))
        return [(score, vocabulary.concepts[index]) for index, score in ranked]


def embedding_query(text: str) -> str:
    """What is embedded for a mention: normalised, leading modifiers dropped, generic lay rewrites applied
    ("pain when peeing" -> "pain when urination"), as lexical matching sees it."""
    normalised = term_normalise(text)
    stripped = _STOP_PREFIX.sub("", normalised) or normalised
    return lay_rewrite(stripped) or stripped


class _Query:
    """One mention's lexical matches per vocabulary and its embedding, each computed on first need and then
    shared by every vocabulary searched."""

    def __init__(self, encoder: SentenceEncoder, text: str) -> None:
        self.encoder = encoder
        self.text = embedding_query(text)
        self.lexical: dict[str, list[tuple[float, Concept]]] = {}
        self._vector = None
        self._done = not self.text

    def vector(self):
        if not self._done:
            self._vector = self.encoder.encode([self.text])[0]
            self._done = True
        return self._vector

    @staticmethod
    def encode_together(encoder: SentenceEncoder, queries: Sequence["_Query"]) -> None:
        pending = [query for query in queries if not query._done]
        if pending:
            for query, vector in zip(pending, encoder.encode([query.text for query in pending])):
                query._vector, query._done = vector, True
