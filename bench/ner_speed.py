"""Extraction time per patient message (~30 words, 3 types): Prompt-bioMRC vs the BIO baseline, same run.

    python bench/ner_speed.py [--model default] [--repeats 200] [--threads 2] [--precisions fp32 int8]

The clinical-context stage (`ner_engine.context`) runs over the MRC entities of the same message, right after
the MRC call of the first precision, in the same loop, so its added time per message is measured against the
model's in the same run: `context_rules` is assertion + attributes alone (no coding), `context_lexical` adds the
codes by lexical matching, `context_embeddings` the codes with the embedding signal too (only when every
vocabulary's term-embedding cache exists: `python -m ner_engine.context build-embeddings`; else it is reported
as skipped). `ratio_p50_<stage>_over_mrc_<precision>` is that stage's p50 over the model's p50, and
`ratio_p50_mrc_plus_<stage>_over_mrc_<precision>` the whole message's (model + stage) over the model alone. Both models share the backbone; the BIO baseline is timed with its architecture (encoder + linear head over
the same windows), which is what its cost depends on. Calls are interleaved so machine noise hits both alike;
the ratio is what to compare across machines. Each precision (fp32; int8 = dynamic quantisation of the
encoder's feed-forward layers, `model_quantize_int8`) is applied to both models alike.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ner_engine import Extractor  # noqa: E402
from ner_engine.backbones import encoder_load, tokenizer_load  # noqa: E402
from ner_engine.baseline import BioEncoder, BioTagger, BioTaggerConfig, bio_predict  # noqa: E402
from ner_engine.context import ContextPipeline  # noqa: E402
from ner_engine.context.normalisation import Normaliser  # noqa: E402
from ner_engine.artifacts import model_quantize_int8  # noqa: E402

MESSAGES = [
    "I've had a bad headache and a fever for two days now, and this morning I started feeling sick. I took paracetamol but it did not help much.",
    "My chest feels tight when I climb stairs and I get short of breath. I have asthma and use a salbutamol inhaler about twice a day.",
    "For the last week my lower back has been aching, worse in the mornings. No numbness. I take ibuprofen 400 mg when it gets really bad.",
    "I keep coughing up yellow mucus and my throat is sore. It started five days ago after a cold. I am diabetic and take metformin.",
    "Since Monday I have had diarrhoea and stomach cramps, maybe six times a day. I feel dizzy when I stand up and very tired.",
    "My son has a rash on his arms and a high temperature since yesterday. He is not eating and seems drowsy. He had chickenpox last year.",
    "I get migraines with flashing lights about once a month. This one has lasted three days. Sumatriptan usually works but not this time.",
    "My ankle is swollen and painful after I twisted it playing football on Saturday. I can walk but it hurts. No other medical problems.",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--types", default="SYMPTOM,DISEASE,DRUG")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"], choices=["fp32", "int8"])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    types = args.types.split(",")

    contexts = {"context_rules": ContextPipeline(normalise=False, normaliser=Normaliser(embeddings="off")),
                "context_lexical": ContextPipeline(normaliser=Normaliser(embeddings="off")),
                "context_embeddings": ContextPipeline(normaliser=Normaliser(embeddings="auto"))}
    skipped = {}
    for name, context in contexts.items():
        context.warm()
    embedded = contexts["context_embeddings"].normaliser
    wanted = embedded.embedding_systems()
    missing = [system for system in wanted if embedded.embedding_index(system) is None]
    if missing:
        skipped["context_embeddings"] = f"no term-embedding cache for {', '.join(missing)}"
        del contexts["context_embeddings"]
    extractors = {precision: Extractor.load(args.model, device="cpu", precision=precision, context=False)
                  for precision in args.precisions}
    main_precision = args.precisions[0]
    mrc_config = extractors[main_precision].model.config
    bio_config = BioTaggerConfig(backbone=mrc_config.backbone, entity_types=types, max_length=mrc_config.max_length)
    bio_encoder = BioEncoder(tokenizer_load(bio_config.backbone), bio_config)
    bio_models = {}
    for precision in args.precisions:
        bio_model = BioTagger(bio_config, encoder_load(bio_config.backbone)).eval()
        bio_models[precision] = model_quantize_int8(bio_model) if precision == "int8" else bio_model

    found: dict[str, list] = {}
    calls = []
    for precision in args.precisions:
        def mrc(text: str, extractor=extractors[precision]) -> None:
            found[text] = extractor.extract([text], types=types)[0]

        def bio(text: str, model=bio_models[precision]) -> None:
            bio_predict(model, bio_encoder, [text])

        calls += [(f"mrc_{precision}", mrc), (f"bio_{precision}", bio)]

    def clinical_context(name: str, text: str) -> float:
        """ms of one context stage over copies of the message's MRC entities (each stage annotates its own)."""
        entities = copy.deepcopy(found[text])
        started = time.perf_counter()
        contexts[name].contextualise(text, entities)
        return (time.perf_counter() - started) * 1000

    for text in MESSAGES:  # warm-up: allocator, tokenizer caches, lazy vocabularies
        for _, call in calls:
            call(text)
        for name in contexts:
            clinical_context(name, text)
    timings: dict[str, list[float]] = {name: [] for name, _ in calls} | {name: [] for name in contexts}
    for i in range(args.repeats):
        text = MESSAGES[i % len(MESSAGES)]
        # Rotate which call runs first so machine noise hits all alike; the context stage follows the
        # MRC call (first precision) whose entities it annotates.
        shift = i % len(calls)
        for name, call in calls[shift:] + calls[:shift]:
            started = time.perf_counter()
            call(text)
            timings[name].append((time.perf_counter() - started) * 1000)
            if name == f"mrc_{main_precision}":
                stages = list(contexts)
                for stage in stages[i % len(stages):] + stages[:i % len(stages)]:
                    timings[stage].append(clinical_context(stage, text))

    words = statistics.mean(len(t.split()) for t in MESSAGES)
    result = {
        "model": args.model, "model_version": extractors[main_precision].model_version,
        "prompt_mode": mrc_config.prompt_mode, "lora_rank": mrc_config.lora_rank, "types": types,
        "mean_words_per_message": round(words, 1), "threads": args.threads, "repeats": args.repeats,
        "cpu": _cpu_name(),
        **{f"{name}_p{q}_ms": round(percentile(values, q), 2) for name, values in timings.items() for q in (50, 95)},
    }
    for precision in args.precisions:
        result[f"ratio_p50_mrc_over_bio_{precision}"] = round(
            result[f"mrc_{precision}_p50_ms"] / result[f"bio_{precision}_p50_ms"], 2)
    for stage in contexts:
        for precision in args.precisions:
            model = result[f"mrc_{precision}_p50_ms"]
            result[f"ratio_p50_{stage}_over_mrc_{precision}"] = round(result[f"{stage}_p50_ms"] / model, 3)
            result[f"ratio_p50_mrc_plus_{stage}_over_mrc_{precision}"] = round(
                (model + result[f"{stage}_p50_ms"]) / model, 3)
    result["skipped"] = skipped
    if "int8" in args.precisions and "fp32" in args.precisions:
        result["speedup_p50_mrc_int8_over_fp32"] = round(result["mrc_fp32_p50_ms"] / result["mrc_int8_p50_ms"], 2)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
