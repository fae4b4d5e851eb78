#!/usr/bin/env bash
# One device check (issue 20): everything a short GPU loan should measure, in one command from the repository root.
#
#   workflow/scripts/device-check.sh [ARGS...]          # ARGS go to `python -m aea.devicecheck` (--help lists them)
#
# With CUDA: the full form (goal: at most 8 minutes on one H100 or H200): a. the kernel and device tests on the GPU,
# b. fused kernel vs reference at B = 32 and 128 and the bytes-moved floor, c. `--profile paper` AEA (kernel, then
# erase_backend=reference) and Baseline 1 at 256x128 in bf16 on generated market-scale data with stand-in weights,
# 100 steps each, d. market-scale features, ranking and both mAPs, e. the loaders' images/s against step c's need.
# Without CUDA: the reduced form (Triton's interpreter, the smoke profile's network and size, tiny data, a few
# steps: about half a minute on 2 cores; the test suite runs it, tests/test_device_check.py).
#
# Writes benchmarks/<device>/device-check-<form>-<UTC time>.csv (tagged with the device, driver, CUDA, torch and
# triton versions) and prints a short summary; exits 1 when a correctness test failed. Commit the CSV: `aea plan`
# projects the cost of a target from the step times measured there (docs/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python -m aea.devicecheck "$@"
