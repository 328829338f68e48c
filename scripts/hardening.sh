#!/usr/bin/env bash
# The sanitizer build and the fuzzers, as CI runs them after the ordinary tests (scripts/test.sh):
#   1. builds the libraries, their unit tests and the fuzz targets with clang, AddressSanitizer and
#      UndefinedBehaviorSanitizer (build-hardening/; LibTorch, OpenCV and the other Debian libraries are not
#      instrumented);
#   2. runs the unit tests that finish quickly under the sanitizers: any memory error, leak or undefined behaviour
#      in vit's code fails (tests/sanitizers/ lists what is suppressed, and why);
#   3. runs every fuzz target (tests/fuzz) for FUZZ_SECONDS each, from its seed corpus; any finding fails.
# usage: scripts/hardening.sh [FUZZ_SECONDS]   (default 30; 0 skips fuzzing)
#        scripts/hardening.sh --fuzz-only SECONDS   (what scripts/fuzz.sh runs)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_only=false
if [[ ${1:-} == --fuzz-only ]]; then
  fuzz_only=true
  shift
fi
seconds=${1:-30}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: $0 [--fuzz-only] [FUZZ_SECONDS]" >&2; exit 2; }
jobs=$(nproc)
# Ninja (where installed: third_party/install-deps.sh) for a new build folder: it builds the named targets below as
# one graph, where CMake's make files build them one after another, each target's last link leaving the other core
# idle. One already configured keeps its generator.
if command -v ninja >/dev/null; then export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}; fi

# -O1 with line tables: the sanitizers' usual trade between speed and readable stacks.
cmake -S . -B build-hardening -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DVIT_FUZZ=ON -DVIT_SANITIZE=address,undefined \
  -DVIT_BUILD_TESTS=ON -DVIT_REQUIRE_OPENCV=ON -DVIT_FUZZ_SECONDS="$seconds" >/dev/null
mapfile -t fuzz_targets < <(cd tests/fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//')  # one target per fuzz_*.cpp
unit_tests=(vit_models_tests vit_data_tests vit_hub_tests vit_engine_tests vit_plots_tests)
if $fuzz_only; then
  cmake --build build-hardening -j"$jobs" --target "${fuzz_targets[@]}"
else
  cmake --build build-hardening -j"$jobs" --target "${unit_tests[@]}" "${fuzz_targets[@]}"
fi

supp=$PWD/tests/sanitizers
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer  # Debian's llvm-14: reports with file and line
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export LSAN_OPTIONS=suppressions=$supp/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp

if ! $fuzz_only; then
  # Every unit test but the few that cannot work under a sanitizer (tests/sanitizers/excluded.txt says why), one
  # process per test program (ctest's process per test case costs the sanitizers' start-up 200 times).
  excluded=("~[.]")  # hidden cases (reference data, exports) need ctest's fixtures
  while IFS= read -r pattern; do excluded+=("~$pattern"); done < <(grep -v '^#' "$supp/excluded.txt" | grep .)
  export VIT_REFERENCE_PYTHON=/usr/bin/python3  # the auto-augment checks against torchvision
  for program in "${unit_tests[@]}"; do
    echo "hardening: $program under AddressSanitizer and UndefinedBehaviorSanitizer"
    "build-hardening/tests/$program" "${excluded[@]}"
  done
fi
if ((seconds > 0)); then
  # The fuzz targets' scratch folders (tests/fuzz/fuzz_support.h) under one removed here, in memory where possible.
  VIT_FUZZ_SCRATCH=$(mktemp -d -p "$([[ -d /dev/shm ]] && echo /dev/shm || echo /tmp)" vit-fuzz.XXXXXX)
  export VIT_FUZZ_SCRATCH
  trap 'rm -rf "$VIT_FUZZ_SCRATCH"' EXIT
  ctest --test-dir build-hardening --output-on-failure -j"$jobs" -L fuzz
fi
