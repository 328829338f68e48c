#!/usr/bin/env bash
# Installs every Debian 12 package the vit toolkit needs to build, test and run.
# Idempotent: packages already present are left alone. Uses sudo only when not root.
# usage: third_party/install-deps.sh [--no-test-tools | --build-only | --runtime-only]
#   (none)           everything: build, run, the data set and the test tools, with ONNX Runtime for the tests
#                    (what the README's test command needs)
#   --no-test-tools  build, run and the data set (what the main job needs)
#   --build-only     what building and running `vit` needs, without the data set and the test tools (about 1 GB
#                    the Dockerfile's build stage never uses)
#   --runtime-only   what the built `vit` needs to run (the Dockerfile's runtime stage)
set -euo pipefail

mode=${1:-}
usage="usage: $0 [--no-test-tools | --build-only | --runtime-only]"
case $mode in
  "" | --no-test-tools | --build-only | --runtime-only) ;;
  # Refused rather than read as "everything": a mistyped option would otherwise install the whole set.
  *) echo "$usage" >&2; exit 2 ;;
esac

build_packages=(
  build-essential cmake git pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU)
  libdnnl-dev             # oneDNN's sgemm for the float32 CPU model (models/cpu_gemm.h)
  libopencv-dev           # image decoding and transforms
  libcli11-dev            # command-line parsing
  libspdlog-dev           # logging
  nlohmann-json3-dev      # safetensors headers, config files
  zlib1g-dev              # reading gzipped IDX files (Fashion-MNIST)
  libcurl4-openssl-dev    # downloading models from the Hugging Face Hub (hub/)
  libssl-dev              # SHA-256 of downloaded weights (OpenSSL's libcrypto)
  libgloo-dev             # Gloo's headers, for c10d's process group (training on several processes)
  libonnx-dev             # ONNX's library, for vit export --format onnx (its libonnx1 comes with libtorch1.13)
)
# What the built `vit` needs to run (the Dockerfile's runtime stage installs only these).
runtime_packages=(
  libtorch1.13 libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libspdlog1.10 libfmt9
  libopenblas0-openmp     # without it LibTorch falls back to the reference BLAS (~30x slower matmul)
  libdnnl2                # oneDNN, for the model's float32 CPU products
  libonnx1 libprotobuf32  # ONNX export (libtorch1.13 depends on them too)
  libcurl4 libssl3 ca-certificates   # Hugging Face Hub downloads over verified TLS
)
# The main job's data set: Fashion-MNIST as gzipped IDX files under /usr/share/datasets/fashion-mnist.
data_packages=(
  dataset-fashion-mnist
)
# Building and running the tests (not needed for `vit` itself, e.g. with -DVIT_BUILD_TESTS=OFF).
test_packages=(
  catch2                              # unit tests
  python3-torch python3-torchvision   # independent reference implementation for the tests
  python3-numpy
  python3-pil                         # benchmark images (bench/make_jpeg_folder.py), fuzzing seeds
  clang libclang-rt-14-dev            # the sanitizer build and libFuzzer (scripts/hardening.sh)
  ninja-build                         # the sanitizer build's generator (scripts/hardening.sh)
  libomp-14-dev                       # clang's OpenMP, which vit's CPU kernels need (models/cpu_parallel_for.h)
  llvm-14                             # llvm-symbolizer: sanitizer reports with file and line
)
# Node.js and npm run ONNX Runtime on the ONNX exports (tests/onnx). Asked for only when the commands are missing:
# a Node.js from elsewhere (NodeSource's package conflicts with Debian's npm) serves as well.
command -v node >/dev/null || test_packages+=(nodejs)
command -v npm >/dev/null || test_packages+=(npm)

packages=("${runtime_packages[@]}")
if [[ $mode != --runtime-only ]]; then
  packages+=("${build_packages[@]}")
fi
if [[ -z $mode || $mode == --no-test-tools ]]; then
  packages+=("${data_packages[@]}")
fi
if [[ -z $mode ]]; then
  packages+=("${test_packages[@]}")
fi

# ONNX Runtime for the tests: npm's onnxruntime-node at the version tests/onnx/package-lock.json pins, in
# tests/onnx/node_modules (no Debian package has it). Installed again only when that version is not there.
install_onnx_runtime() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/onnx"
  local want have
  # The version the lockfile pins, and the one installed (paths passed as arguments, not spliced into the code).
  want=$(node -p "require(process.argv[1]).packages['node_modules/onnxruntime-node'].version" "$dir/package-lock.json")
  have=$(node -p "try { require(process.argv[1]).version } catch (e) { '' }" \
    "$dir/node_modules/onnxruntime-node/package.json")
  if [[ $have == "$want" ]]; then
    echo "install-deps: onnxruntime-node $have already installed"
    return
  fi
  echo "install-deps: installing onnxruntime-node $want into $dir (npm ci)"
  # --ignore-scripts: its install script only fetches a CUDA provider (tests/onnx/.npmrc says the same).
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund)
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  if [[ -z $mode ]]; then install_onnx_runtime; fi
  exit 0
fi

as_root=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [[ -z $mode ]]; then install_onnx_runtime; fi
