#!/usr/bin/env bash
# For the lent GPU machine (pip PyTorch with CUDA, no OpenCV C++), in the order that matters when time runs out:
#   1. builds `vit` (the commands that need no images) and the tests against that PyTorch's LibTorch;
#   2. `vit bench --device cuda --amp bf16` beside timm's model in eager PyTorch (bench/compare.py), same run;
#   3. the gradient all-reduce over NCCL through torchrun (one GPU);
#   4. runs the tests: the torchvision reference, the CUDA check and the export check
#      (python_reads_exports: torch.jit.load in PyTorch 2.x, timm.create_model, transformers) included.
# The machine lacks CLI11, spdlog and nlohmann-json (it has Catch2 3): scripts/gpu-carry-deps.sh copies Debian's
# into .gpudeps, which the device tool carries. Every stage is bounded so that the whole run ends within
# GPU_CHECK_SECONDS (default 540). The log goes to $OUT/gpu-check.log when $OUT is set (the device tool), else
# to build-gpu/.
set -uo pipefail
cd "$(dirname "$0")/.."
log_dir=${OUT:-build-gpu}
mkdir -p "$log_dir"
deadline=$((SECONDS + ${GPU_CHECK_SECONDS:-540}))
left() { echo $((deadline - SECONDS)); }
# Seconds for a stage that must leave `keep` seconds after it (never under 10).
until_keep() { local s=$(($(left) - $1)); echo $((s < 10 ? 10 : s)); }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
  python3 -c 'import timm; print("timm", timm.__version__)' || true
  python3 -c 'import transformers; print("transformers", transformers.__version__)' || true
  cmake --version | head -n 1
  prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  [[ -d .gpudeps/usr ]] && prefix="$prefix;$PWD/.gpudeps/usr"
  # NCCL's header comes with the nvidia-nccl wheel a CUDA PyTorch depends on.
  nccl=$(python3 -c 'import nvidia.nccl as n; print(list(n.__path__)[0] + "/include")' 2>/dev/null) || true
  torch_dir=$(dirname "$(dirname "${prefix%%;*}")")  # .../site-packages/torch
  echo "torch's own fmt headers: $(ls -d "$torch_dir/include/fmt" 2>/dev/null || echo none)"
  flags=()
  [[ -d .gpudeps/fmt-first ]] && flags+=(-DCMAKE_CXX_FLAGS="-I$PWD/.gpudeps/fmt-first")
  configure() {
    cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$1" "${flags[@]}" \
          ${nccl:+-DVIT_NCCL_INCLUDE="$nccl"} -DVIT_REFERENCE_PYTHON="$(command -v python3)"
  }
  # The machine's own Catch2 where it has one; Debian's, carried, where not.
  configure "$prefix" || { [[ -d .gpudeps/catch2 ]] && configure "$prefix;$PWD/.gpudeps/catch2"; } || exit 1

  echo "== 1. vit and the tests ($(left) s left)"
  time cmake --build build-gpu -j"$(nproc)" --target vit -- -k 0
  # The tests are built now too (a minute more on 16 cores), so that a run short of time still runs them.
  timeout "$(until_keep 300)" cmake --build build-gpu -j"$(nproc)" -- -k 0

  if [[ -x build-gpu/app/vit ]]; then
    echo "== 2. vit beside timm, CUDA bf16 ($(left) s left)"
    impl=torchvision
    python3 -c 'import timm' 2>/dev/null && impl=timm
    timeout 240 python3 bench/compare.py --vit build-gpu/app/vit --python python3 --impl "$impl" --rounds 2 \
      --sides vit,torch \
      --case "vit_base_patch16_224, batch 256, bf16, cuda|--model vit_base_patch16_224 --batch-size 256 --device cuda --amp bf16 --warmup 5 --windows 3 --window-seconds 1.5" \
      --case "vit_tiny_patch16_224, batch 256, bf16, cuda|--model vit_tiny_patch16_224 --batch-size 256 --device cuda --amp bf16 --warmup 5 --windows 3 --window-seconds 1.5"

    echo "== 3. c10d over NCCL ($(left) s left)"
    grep -q "VIT_HAVE_NCCL" build-gpu/build.ninja && echo "NCCL: built" || echo "NCCL: not found"
    timeout 90 torchrun --nnodes 1 --nproc_per_node 1 --master_addr 127.0.0.1 --master_port 29531 --no_python \
      build-gpu/app/vit bench --phases all-reduce --device cuda --model vit_base_patch16_224 --windows 5
  fi

  echo "== 4. tests ($(left) s left)"
  if ! timeout "$(until_keep 40)" ctest --test-dir build-gpu --output-on-failure -j8 --timeout 120; then
    # A backtrace of the first failed unit test, where a debugger is at hand (cuda-gdb debugs host code too).
    failed=$(sed -n 's/^[0-9]*:models: *//p' build-gpu/Testing/Temporary/LastTestsFailed.log 2>/dev/null | head -n 1)
    if [[ -n $failed ]] && command -v cuda-gdb >/dev/null; then
      timeout 30 cuda-gdb -batch -ex run -ex bt --args build-gpu/tests/vit_models_tests "$failed" 2>&1 | tail -n 40
    fi
  fi
  echo "std::filesystem symbols exported by libtorch_cpu: $(nm -D --defined-only "$torch_dir/lib/libtorch_cpu.so" \
    | c++filt | grep -c 'std::filesystem' || true)"
  echo "== done ($(left) s left)"
} 2>&1 | tee "$log_dir/gpu-check.log"
