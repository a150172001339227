#!/usr/bin/env bash
# Every check and figure that needs a CUDA GPU, in one command:
#   1. the tests of training, among them those that run only on a GPU (a step that never waits for
#      the GPU; fused AdamW and channels-last there);
#   2. training images/s of both networks, eager and compiled, with the GPU's busy share;
#   3. milliseconds per sample for each sampler on the bundled model.
#
#     bash benchmarks/gpu.sh [FOLDER]
#
# Run it from the repository root with a python3 that holds a CUDA build of torch, pytest and
# hypothesis; only the engine is used (no Qt). Each part's output is also written to FOLDER
# (default: gpu-figures/). A part that fails is reported and the next one runs.
set -uo pipefail
out="${1:-gpu-figures}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
failed=0

part() {  # part NAME COMMAND...: run COMMAND, its output shown and kept in FOLDER/NAME.txt
    local name="$1"
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$out/$name.txt" || { echo "== $name FAILED"; failed=1; return 1; }
}

part device python3 -c "import torch; assert torch.cuda.is_available(), 'this python3 sees no CUDA GPU'; \
print('torch', torch.__version__, 'on', torch.cuda.get_device_name())" || exit 1
part tests python3 -m pytest -q -p no:cacheprovider -rs tests/core/test_training.py tests/core/test_distributed.py
part training python3 benchmarks/bench_training.py --device cuda --seconds 5
part samplers python3 benchmarks/bench_samplers.py --only speed --device cuda --num-images 64
exit "$failed"
