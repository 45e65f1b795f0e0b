#!/usr/bin/env bash
# Train the full one-pass recipe (ner_engine/configs/onepass.json) on one GPU and write the artifact to OUT.
#   bash bench/gpu_train.sh OUT [key=value overrides...]
# Budget: under 9 minutes on one H200-class GPU: bf16 autocast (training.py on CUDA), batch 64, a
# 420-second training budget, then dev threshold tuning and the test scores written into OUT/model_card.*.
# The run's device and wall time are in OUT/model_card.json ("cost"); copy OUT to ner_engine/models/default
# only after `python -m ner_engine evaluate` shows it passes issue 12's shipping rule.
set -euo pipefail
OUT=${1:?usage: bench/gpu_train.sh OUT [key=value ...]}
shift
PY=${PY:-.venv/bin/python}
RUN=$(mktemp -d "${TMPDIR:-/tmp}/ner-gpu-XXXX")
START=$(date +%s)
NER_CONTEXT_EMBEDDINGS=off "$PY" -m ner_engine train --config ner_engine/configs/onepass.json --no-progress \
  --time-budget 420 output_dir="$RUN" device=cuda batch_size=64 learning_rate=8e-5 epochs=4 eval_every=400 \
  threads=8 feature_cache="$RUN/features" version=minilm-onepass-gpu "$@"
mkdir -p "$OUT"
cp -r "$RUN/best/." "$OUT/"
echo "wall time: $(( $(date +%s) - START )) s; artifact in $OUT"
"$PY" - "$OUT" <<'PY'
import json, sys
card = json.load(open(f"{sys.argv[1]}/model_card.json"))
print(json.dumps(card["cost"], indent=1))
for name, report in card.get("test", {}).items():
    print(name, report["strict"]["micro"]["f1"])
PY
