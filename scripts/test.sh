#!/usr/bin/env bash
# From a fresh Debian 12 machine: installs every dependency, builds everything and runs all tests; then the
# sanitizer build's unit tests and every fuzz target for a bounded time (scripts/hardening.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash third_party/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVIT_REQUIRE_OPENCV=ON -DVIT_BUILD_TESTS=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
bash scripts/hardening.sh
