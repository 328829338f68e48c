#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs every dependency, builds `vit` and runs it.
# Until training lands (issue 3) the job describes the reference architecture and the small preset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash third_party/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVIT_REQUIRE_OPENCV=ON -DVIT_BUILD_TESTS=OFF
cmake --build build -j"$(nproc)" --target vit
build/app/vit info vit_base_patch16_224
build/app/vit info vit_mini_patch7_28
