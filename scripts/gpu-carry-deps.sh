#!/usr/bin/env bash
# Copies the Debian packages vit builds against that the GPU machine lacks (CLI11, spdlog with fmt, nlohmann-json:
# headers, CMake configs, spdlog's and fmt's shared libraries) into .gpudeps/usr, a prefix the device tool carries
# (`carry: [".gpudeps"]`) and scripts/gpu-check.sh puts on CMAKE_PREFIX_PATH. Also:
#   .gpudeps/fmt-first  fmt 9's headers alone, searched before every other include folder: the pip PyTorch ships
#                       fmt 12's headers in its include folder, and Debian's spdlog 1.10 does not compile with those;
#   .gpudeps/catch2     Debian's Catch2 2, used only where the machine has no Catch2 of its own (it has Catch2 3).
# Run here, after third_party/install-deps.sh; .gpudeps is kept out of git by .git/info/exclude.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpudeps/' .git/info/exclude 2>/dev/null || echo '/.gpudeps/' >>.git/info/exclude
lib=/usr/lib/x86_64-linux-gnu
out=.gpudeps/usr
rm -rf .gpudeps
mkdir -p "$out/include" "$out/lib/x86_64-linux-gnu/cmake" "$out/share/cmake" .gpudeps/fmt-first \
         .gpudeps/catch2/include .gpudeps/catch2/lib/cmake
cp -a /usr/include/{spdlog,fmt,CLI,nlohmann} "$out/include/"
cp -a /usr/include/fmt .gpudeps/fmt-first/
cp -a /usr/include/catch2 .gpudeps/catch2/include/
cp -a "$lib"/libspdlog.so* "$lib"/libfmt.so* "$out/lib/x86_64-linux-gnu/"
cp -a "$lib"/cmake/{spdlog,fmt} "$out/lib/x86_64-linux-gnu/cmake/"
cp -a /usr/lib/cmake/Catch2 .gpudeps/catch2/lib/cmake/
cp -a /usr/lib/libCatch2WithMain.a .gpudeps/catch2/lib/
cp -a /usr/share/cmake/{CLI11,nlohmann_json} "$out/share/cmake/"
du -sh .gpudeps
