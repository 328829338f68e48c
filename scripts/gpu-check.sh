#!/usr/bin/env bash
# For the lent GPU machine (pip PyTorch with CUDA, no OpenCV C++): builds the models library, vit without its
# image commands, and the tests against that PyTorch's LibTorch and runs them, the torchvision reference, the
# CUDA check and the export check (python_reads_exports: torch.jit.load in PyTorch 2.x, timm.create_model,
# transformers where installed) included; then `vit bench --device cuda --amp bf16` beside timm (bench/compare.py),
# and the gradient all-reduce over NCCL through torchrun (one GPU).
# The log goes to $OUT/gpu-check.log when $OUT is set (the device tool), else to build-gpu/.
set -uo pipefail
cd "$(dirname "$0")/.."
log_dir=${OUT:-build-gpu}
mkdir -p "$log_dir"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
  python3 -c 'import timm; print("timm", timm.__version__)' || true
  python3 -c 'import transformers; print("transformers", transformers.__version__)' || true
  cmake --version | head -n 1
  prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
        -DVIT_REFERENCE_PYTHON="$(command -v python3)" || exit 1
  time cmake --build build-gpu -j"$(nproc)" || exit 1
  if ! ctest --test-dir build-gpu --output-on-failure -j8; then
    # A backtrace of the first failed unit test, where a debugger is at hand (cuda-gdb debugs host code too).
    failed=$(sed -n 's/^[0-9]*:models: *//p' build-gpu/Testing/Temporary/LastTestsFailed.log | head -n 1)
    if [[ -n $failed ]] && command -v cuda-gdb >/dev/null; then
      cuda-gdb -batch -ex run -ex bt --args build-gpu/tests/vit_models_tests "$failed" 2>&1 | tail -n 40
    fi
  fi
  # The CUDA benchmark beside timm's model in eager PyTorch (torchvision's where timm is missing), same run.
  impl=torchvision
  python3 -c 'import timm' 2>/dev/null && impl=timm
  timeout 420 python3 bench/compare.py --vit build-gpu/app/vit --python python3 --impl "$impl" --rounds 2 --sides vit,torch \
    --case "vit_base_patch16_224, batch 256, bf16, cuda|--model vit_base_patch16_224 --batch-size 256 --device cuda --amp bf16" \
    --case "vit_tiny_patch16_224, batch 256, bf16, cuda|--model vit_tiny_patch16_224 --batch-size 256 --device cuda --amp bf16"
  # c10d with NCCL (issue 16): the gradient all-reduce of a data-parallel step on one GPU through torchrun.
  grep -q "VIT_HAVE_NCCL:INTERNAL=ON\|VIT_NCCL_INCLUDE:PATH=/" build-gpu/CMakeCache.txt && echo "NCCL: built" || echo "NCCL: not found"
  timeout 120 torchrun --nnodes 1 --nproc_per_node 1 --master_addr 127.0.0.1 --master_port 29531 --no_python \
    build-gpu/app/vit bench --phases all-reduce --device cuda --model vit_base_patch16_224 --windows 5
  echo "std::filesystem symbols exported by libtorch_cpu: $(nm -D --defined-only "$prefix/../../lib/libtorch_cpu.so" \
    | c++filt | grep -c 'std::filesystem' || true)"
} 2>&1 | tee "$log_dir/gpu-check.log"
