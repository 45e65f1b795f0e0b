"""Download the public corpora by name into the layout `datasets.py` reads (for machines with internet).

Sources and commits are those recorded in the data folder's READMEs. Corpora without a stable raw-file
address (MACCROBAT2020 on FigShare, MedRed's zip) are listed with manual instructions instead.
"""
from __future__ import annotations

import urllib.request
from pathlib import Path

_MTL = "https://raw.githubusercontent.com/cambridgeltl/MTL-Bioinformatics-2016/df0df02fae6dbb87d88ffcf323b9096528f06f84/data"
SOURCES: dict[str, dict[str, str]] = {
    "ncbi-disease": {f"NCBI-disease/conll/{s}.tsv": f"{_MTL}/NCBI-disease-IOB/{s}.tsv" for s in ("train", "devel", "test")},
    "bc5cdr": {f"BC5CDR/conll/{s}.tsv": f"{_MTL}/BC5CDR-IOB/{s}.tsv" for s in ("train", "devel", "test")},
    "anatem": {f"AnatEM/conll/{s}.tsv": f"{_MTL}/AnatEM-IOB/{s}.tsv" for s in ("train", "devel", "test")},
}
MANUAL = {
    "maccrobat": "download MACCROBAT2020 from FigShare (doi:10.6084/m9.figshare.9764942, CC BY 4.0) and put the "
                 "<PMID>.txt/.ann pairs in DATA_DIR/MACCROBAT2020/brat/",
    "medred": "download MedRed from FigShare (doi:10.6084/m9.figshare.12039609) and put MedRed_{train,dev,test}.txt "
              "in DATA_DIR/MedRed/train_dev_test/",
}
SOURCES["bc5cdr-disease"] = SOURCES["bc5cdr-chemical"] = SOURCES["bc5cdr"]


def corpus_fetch(name: str, data_dir: str | Path, *, timeout: float = 60.0) -> list[Path]:
    if name in MANUAL:
        raise ValueError(f"{name} cannot be fetched automatically: {MANUAL[name]}")
    if name not in SOURCES:
        raise KeyError(f"unknown corpus {name!r}; fetchable: {', '.join(sorted(SOURCES))}")
    written = []
    for relative, url in SOURCES[name].items():
        target = Path(data_dir) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https addresses
            target.with_suffix(".part").write_bytes(response.read())
        target.with_suffix(".part").replace(target)
        written.append(target)
    return written
