#!/usr/bin/env bash
# Paper-profile rehearsal (issue 13): the `paper` profile end to end through the CLI, without the real data or
# the ImageNet file, so its first real run does not meet a fault the small profiles never reach.
#
#   workflow/scripts/rehearse-paper.sh [WORK_DIR]          # default WORK_DIR: rehearsal/
#
#   1. generated Market-1501 at its scale (--size market-scale: 751 / 750 ids, 2,798 distractors, 3,819 junk;
#      ~13.2k train, ~3.3k query, ~16.1k gallery images drawn near the release's 12,936 / 3,368 / 15,913)
#   2. `aea data check` with check_counts on (every image decoded; the verdict is cached for step 4)
#   3. a STAND-IN for torchvision's ResNet-50 weights file: random values in its format, NOT ImageNet weights;
#      it exercises the pretrained-weights loading path (resolve_pretrained / _load_imagenet)
#   4. `aea train --profile paper` (ResNet-50, 256x128, SGD, AMP where CUDA) for a few iterations, then the
#      evaluation of the whole query/gallery set (--evaluate)
#
# Knobs (environment): SIZE (synthetic size, default market-scale), METHOD (default aea), ITERS (iterations,
# default 2), THREADS (default: all cores), DEVICE (default auto), EVALUATE (1: evaluate, 0: train only).
# Cost on a CPU: evaluation dominates, two ResNet-50 passes per test image (~19.4k images at market-scale);
# SIZE=tiny runs every step on ~70 test images in minutes.
set -euo pipefail

WORK=${1:-rehearsal}
SIZE=${SIZE:-market-scale}
METHOD=${METHOD:-aea}
ITERS=${ITERS:-2}
THREADS=${THREADS:-$(nproc)}
DEVICE=${DEVICE:-auto}
EVALUATE=${EVALUATE:-1}

DATA="$WORK/data-$SIZE"
WEIGHTS="$WORK/resnet50-stand-in.pth"
RUN="$WORK/runs/$SIZE/$METHOD"

aea data make-synthetic --dataset market1501 --size "$SIZE" --root "$DATA"
aea data check --dataset market1501 --root "$DATA" --json "$WORK/counts-$SIZE.json"
aea data stand-in-weights --arch resnet50 --out "$WEIGHTS"
evaluate=()
if [ "$EVALUATE" = 1 ]; then evaluate=(--evaluate); fi
AEA_DATA="$DATA" aea train --profile paper --dataset market1501 --method "$METHOD" --seed 0 --out "$RUN" \
    --threads "$THREADS" --pretrained "$WEIGHTS" "${evaluate[@]}" \
    epochs=1 warmup_epochs=0 max_iters_per_epoch="$ITERS" device="$DEVICE"
echo "rehearsal finished: $RUN"
