"""Mention -> code dictionaries learned from training annotations: reading ids, voting, the file round trip,
installation through NER_CONTEXT_DICTIONARIES, the normaliser using them (with its threshold), the CLI."""
from __future__ import annotations

import pytest

from ner_engine.context import __main__ as cli
from ner_engine.context import vocabularies
from ner_engine.context.dictionaries import (CODED_CORPORA, DICTIONARIES_ENV, CodedMention, DictionaryEntry,
                                             code_parse, dictionaries_dir, dictionaries_installed, dictionary_build,
                                             dictionary_from_mentions, dictionary_load, dictionary_save,
                                             pubtator_coded_mentions)
from ner_engine.context.normalisation import Normaliser
from ner_engine.context.vocabularies import Vocabulary

PUBTATOR = """\
1|t|Hypertension after cocaine.
1|a|Hypertension and HTN; breast and ovarian cancer. No effect (-1).
1\t0\t12\tHypertension\tDisease\tD006973
1\t19\t26\tcocaine\tChemical\tD003042
1\t28\t40\tHypertension\tDisease\tMESH:D006973
1\t45\t48\tHTN\tDisease\tD006973
1\t50\t75\tbreast and ovarian cancer\tDisease\tD001943|D010051\tbreast cancer|ovarian cancer
1\t77\t86\tNo effect\tDisease\t-1
1\tCID\tD003042\tD006973

2|t|Familial hypertension syndrome.
2|a|Nothing else.
2\t0\t30\tFamilial hypertension syndrome\tDisease\tOMIM:145500
2\t9\t21\thypertension\tDisease\tD006973
"""


@pytest.fixture
def pubtator(tmp_path):
    path = tmp_path / "train.PubTator.txt"
    path.write_text(PUBTATOR, encoding="utf-8")
    return path


def test_code_parse():
    assert code_parse("D006973") == ("MeSH", "D006973")
    assert code_parse("MESH:C535509") == ("MeSH", "C535509")
    assert code_parse("omim:145500") == ("OMIM", "OMIM:145500")
    assert code_parse("-1") is None and code_parse("hypertension") is None


def test_pubtator_coded_mentions(pubtator):
    mentions = list(pubtator_coded_mentions(pubtator, {"Disease": "DISEASE"}))
    assert [m.text for m in mentions] == ["Hypertension", "Hypertension", "HTN", "breast and ovarian cancer",
                                          "No effect", "Familial hypertension syndrome", "hypertension"]
    assert mentions[0] == CodedMention("1", "Hypertension", "DISEASE", (("MeSH", "D006973"),))
    assert mentions[3].ids == (("MeSH", "D001943"), ("MeSH", "D010051")) and mentions[4].ids == ()
    assert mentions[5].ids == (("OMIM", "OMIM:145500"),)
    chemicals = list(pubtator_coded_mentions(pubtator, {"Chemical": "DRUG"}))
    assert [(m.text, m.entity_type) for m in chemicals] == [("cocaine", "DRUG")]


def test_dictionary_votes_per_normalised_term():
    mesh = lambda *codes: tuple(("MeSH", code) for code in codes)  # noqa: E731
    mentions = [CodedMention("1", "Psychosis", "DISEASE", mesh("D011605")),
                CodedMention("2", "psychosis", "DISEASE", mesh("D011605")),
                CodedMention("3", "psychosis", "DISEASE", mesh("D011618")),
                CodedMention("4", "psychosis", "DRUG", mesh("D000001")),
                CodedMention("5", "a and b", "DISEASE", mesh("D1", "D2")),  # composite: no single code
                CodedMention("6", "--", "DISEASE", mesh("D3"))]              # nothing left to match
    entries = dictionary_from_mentions(mentions)
    assert entries == [DictionaryEntry("DISEASE", "MeSH", "D011605", "psychosis", 2),
                       DictionaryEntry("DRUG", "MeSH", "D000001", "psychosis", 1)]


def test_save_load_round_trip(tmp_path):
    entries = [DictionaryEntry("DISEASE", "MeSH", "D006973", "Hypertension", 3),
               DictionaryEntry("DISEASE", "OMIM", "OMIM:145500", "familial\thypertension", 1)]
    path = dictionary_save(entries, tmp_path / "sub" / "toy.tsv", source="toy train")
    assert path.read_text().startswith("# ner_engine.context mention -> code dictionary")
    loaded = dictionary_load(path)
    assert loaded[0] == entries[0]
    assert loaded[1].term == "familial hypertension"  # a tab inside a term cannot break the columns
    (tmp_path / "bad.tsv").write_text("DISEASE\tMeSH\tD1\n")
    with pytest.raises(ValueError, match="expected entity_type"):
        dictionary_load(tmp_path / "bad.tsv")


def test_installed_dictionaries_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(DICTIONARIES_ENV, str(tmp_path))
    assert dictionaries_dir() == tmp_path
    assert dictionaries_installed() == []
    dictionary_save([DictionaryEntry("DISEASE", "MeSH", "D2", "b", 1)], tmp_path / "b.tsv")
    dictionary_save([DictionaryEntry("DISEASE", "MeSH", "D1", "a", 1)], tmp_path / "a.tsv")
    (tmp_path / "notes.txt").write_text("not a dictionary")
    assert [e.code for e in dictionaries_installed()] == ["D1", "D2"]  # file-name order
    assert dictionaries_installed(tmp_path / "missing") == []


def test_dictionary_only_system_and_threshold():
    """OMIM comes from the dictionary alone; its exact terms score 1.0, near misses obey the threshold."""
    entries = [DictionaryEntry("DISEASE", "OMIM", "OMIM:145500", "familial hypertension syndrome", 2)]
    normaliser = Normaliser(dictionaries=entries, vocabularies={"MeSH": Vocabulary("MeSH", ()),
                                                                "ICD-10-CM": Vocabulary("ICD-10-CM", ()),
                                                                "HPO": Vocabulary("HPO", ())})
    assert normaliser.systems("DISEASE") == ("MeSH", "ICD-10-CM", "HPO", "OMIM")
    assert normaliser.systems("DRUG") == ("DrugBank", "MeSH-drug")
    best = normaliser.normalise("Familial hypertension syndrome", "DISEASE")[0]
    assert best == {"system": "OMIM", "code": "OMIM:145500", "name": "familial hypertension syndrome", "score": 1.0}
    near = normaliser.normalise("familial hypertensive syndrom", "DISEASE", threshold=0.5)
    assert near and near[0]["code"] == "OMIM:145500" and near[0]["score"] < 0.95
    assert normaliser.normalise("familial hypertensive syndrom", "DISEASE", threshold=0.95) == []
    assert normaliser.normalise("xyzzy", "DISEASE", threshold=0.5) == []


def test_dictionaries_extend_built_vocabularies_only(monkeypatch):
    toy = lambda: Vocabulary("MeSH", [("D006973", "Hypertension", [])])  # noqa: E731
    monkeypatch.setitem(vocabularies.BUILDERS, "MeSH", toy)
    entries = [DictionaryEntry("DISEASE", "MeSH", "D006973", "HTN", 4),
               DictionaryEntry("DISEASE", "MeSH", "C000001", "made-up syndrome", 1),  # code the vocabulary lacks
               DictionaryEntry("DRUG", "MeSH", "D003042", "coke", 1)]                # another vocabulary
    built = Normaliser(dictionaries=entries).vocabulary("MeSH")
    assert [c.code for c in built.concepts] == ["D006973", "C000001"]
    trained = Normaliser(dictionaries=entries)
    assert trained.normalise("htn", "DISEASE", systems=("MeSH",))[0]["code"] == "D006973"
    assert trained.normalise("made-up syndrome", "DISEASE", systems=("MeSH",))[0]["name"] == "made-up syndrome"
    assert Normaliser(dictionaries=()).normalise("htn", "DISEASE", systems=("MeSH",)) == []
    injected = Normaliser(dictionaries=entries, vocabularies={"MeSH": toy()})  # ready-made: used as it is
    assert injected.normalise("htn", "DISEASE", systems=("MeSH",)) == []


def test_default_normaliser_reads_installed_dictionaries(tmp_path, monkeypatch):
    monkeypatch.setenv(DICTIONARIES_ENV, str(tmp_path))
    dictionary_save([DictionaryEntry("DISEASE", "OMIM", "OMIM:1", "toy syndrome", 1)], tmp_path / "toy.tsv")
    assert Normaliser().normalise("toy syndrome", "DISEASE", systems=("OMIM",))[0]["code"] == "OMIM:1"


def _fake_data_dir(root, pubtator_text):
    for split in ("train", "dev", "test"):
        path = root / CODED_CORPORA["bc5cdr-disease"].files[split]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pubtator_text if split != "test" else "9|t|Test only.\n9|a|x\n9\t0\t4\tTest\tDisease\tD9\n")


def test_build_uses_training_splits_only(tmp_path):
    _fake_data_dir(tmp_path, PUBTATOR)
    entries = dictionary_build("bc5cdr-disease", data_dir=tmp_path)
    assert {(e.term, e.code, e.count) for e in entries} >= {("Hypertension", "D006973", 6), ("HTN", "D006973", 2)}
    assert "D9" not in {e.code for e in entries}
    with pytest.raises(KeyError, match="no coded corpus"):
        dictionary_build("medred", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        dictionary_build("ncbi-disease", data_dir=tmp_path)


def test_cli_builds_into_the_output_folder(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    _fake_data_dir(data, PUBTATOR)
    assert cli.main(["build-dictionary", "bc5cdr-disease", "--data-dir", str(data), "--out", str(out)]) == 0
    assert "DISEASE/MeSH" in capsys.readouterr().out
    assert {e.code for e in dictionaries_installed(out)} == {"D006973", "OMIM:145500"}
    with pytest.raises(SystemExit):
        cli.main(["build-dictionary", "bc5cdr-disease", "--data-dir", str(data), "--splits", "train,test"])
    assert cli.main(["list"]) == 0 and "ncbi-disease" in capsys.readouterr().out


def test_real_bc5cdr_dictionary(shared_data, tmp_path):
    """Built from the real BC5CDR train+dev splits (skipped without ../shared/data)."""
    entries = dictionary_build("bc5cdr", data_dir=shared_data)
    assert {e.entity_type for e in entries} == {"DISEASE", "DRUG"} and {e.system for e in entries} == {"MeSH"}
    assert len(entries) > 2000
    path = dictionary_save(entries, tmp_path / "bc5cdr.tsv")
    assert dictionary_load(path) == entries
