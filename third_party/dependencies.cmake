# Finds the toolkit's dependencies. Each failure names the Debian package that provides the missing piece;
# third_party/install-deps.sh installs all of them.

function(vit_require found what package)
  if(NOT ${found})
    message(FATAL_ERROR "${what} not found: install the Debian package '${package}' "
                        "(third_party/install-deps.sh installs every dependency)")
  endif()
endfunction()

# LibTorch: Debian's libtorch-dev is found with no hints; a pip PyTorch's with
#   -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
find_package(Torch QUIET)
vit_require(Torch_FOUND "LibTorch (find_package(Torch))" "libtorch-dev")
message(STATUS "LibTorch ${Torch_VERSION}: ${TORCH_LIBRARIES}")
# OpenMP: vit's CPU kernels split their work with at::parallel_for, which runs on LibTorch's OpenMP threads only
# in code compiled with OpenMP (models/cpu_parallel_for.h). GCC's libgomp, the runtime LibTorch itself uses; clang
# (the sanitizer build, scripts/hardening.sh) brings LLVM's.
find_package(OpenMP QUIET COMPONENTS CXX)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  vit_require(OpenMP_CXX_FOUND "OpenMP for C++ (clang++ -fopenmp)" "libomp-14-dev")
else()
  vit_require(OpenMP_CXX_FOUND "OpenMP for C++ (g++ -fopenmp)" "g++")
endif()

find_package(nlohmann_json 3.9 QUIET)
vit_require(nlohmann_json_FOUND "nlohmann_json" "nlohmann-json3-dev")

find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
if(OpenCV_FOUND)
  set(VIT_HAVE_OPENCV ON)
  message(STATUS "OpenCV ${OpenCV_VERSION}: building the image pipeline and every vit command")
elseif(VIT_REQUIRE_OPENCV)
  vit_require(OpenCV_FOUND "OpenCV (core, imgproc, imgcodecs)" "libopencv-dev")
else()
  set(VIT_HAVE_OPENCV OFF)
  message(WARNING "OpenCV not found (Debian package 'libopencv-dev'): building vit with only the commands "
                  "that need no images (bench, info, export); the image pipeline is skipped")
endif()

# A LibTorch built with CUDA (a pip PyTorch's) lists its CUDA libraries here; Debian's is CPU only.
if(TORCH_CUDA_LIBRARIES)
  set(VIT_WITH_CUDA ON)
  message(STATUS "LibTorch has CUDA: vit --device cuda is available")
else()
  set(VIT_WITH_CUDA OFF)
endif()

find_package(Threads REQUIRED)
find_package(CLI11 QUIET)
vit_require(CLI11_FOUND "CLI11" "libcli11-dev")
find_package(spdlog QUIET)
vit_require(spdlog_FOUND "spdlog" "libspdlog-dev")
# libcurl and OpenSSL's libcrypto: model downloads from the Hugging Face Hub (hub/). Required for the full build
# (VIT_REQUIRE_OPENCV); elsewhere optional, and vit then reads Hub models from the local cache only.
find_package(CURL QUIET)
find_package(OpenSSL QUIET COMPONENTS Crypto)
if(CURL_FOUND AND OpenSSL_FOUND)
  set(VIT_HAVE_HUB_DOWNLOADS ON)
elseif(VIT_REQUIRE_OPENCV)
  vit_require(CURL_FOUND "libcurl" "libcurl4-openssl-dev")
  vit_require(OpenSSL_FOUND "OpenSSL's libcrypto" "libssl-dev")
else()
  set(VIT_HAVE_HUB_DOWNLOADS OFF)
  message(WARNING "libcurl or OpenSSL not found (Debian packages 'libcurl4-openssl-dev', 'libssl-dev'): vit reads "
                  "Hugging Face Hub models from the local cache but does not download them")
endif()
# c10d's Gloo process group, for training on several processes (engine/collectives.h): LibTorch's c10d headers
# and Gloo's (Debian: libgloo-dev; a pip PyTorch ships both). Required for the full build; elsewhere optional,
# and vit then trains on one process only, saying so when launched on several.
find_path(VIT_C10D_INCLUDE torch/csrc/distributed/c10d/ProcessGroupGloo.hpp HINTS ${TORCH_INCLUDE_DIRS})
find_path(VIT_GLOO_INCLUDE gloo/config.h HINTS ${TORCH_INCLUDE_DIRS})
if(VIT_C10D_INCLUDE AND VIT_GLOO_INCLUDE)
  set(VIT_HAVE_C10D ON)
  # Debian's LibTorch links Gloo as a shared library; a pip PyTorch has it inside libtorch_cpu.
  find_library(VIT_GLOO_LIBRARY gloo)
  # NCCL's header comes with a CUDA PyTorch's nvidia-nccl wheel or the CUDA toolkit: give its folder as
  # -DVIT_NCCL_INCLUDE=... when it is not found.
  if(VIT_WITH_CUDA)
    find_path(VIT_NCCL_INCLUDE nccl.h HINTS ${TORCH_INCLUDE_DIRS} ENV NCCL_INCLUDE_DIR)
  endif()
  if(VIT_NCCL_INCLUDE)
    set(VIT_HAVE_NCCL ON)
  endif()
  if(VIT_HAVE_NCCL)
    message(STATUS "c10d: training on several processes over Gloo and NCCL")
  else()
    message(STATUS "c10d: training on several processes over Gloo")
  endif()
elseif(VIT_REQUIRE_OPENCV)
  vit_require(VIT_GLOO_INCLUDE "Gloo's headers (gloo/config.h)" "libgloo-dev")
else()
  set(VIT_HAVE_C10D OFF)
  message(WARNING "c10d's Gloo headers not found (Debian package 'libgloo-dev'): vit trains on one process only")
endif()
# ONNX's library and protobuf, for `vit export --format onnx` (models/onnx_export.h): Debian's libonnx-dev (ONNX 1.12;
# its libonnx1 and protobuf already come with libtorch1.13). Required for the full build; elsewhere optional (a pip
# PyTorch bundles its own copies, which must not meet Debian's in one process), and vit then says it cannot.
# ONNX's CMake config does not look for protobuf itself, and only its ONNX_ML flavour of headers ships.
find_package(Protobuf QUIET)
find_package(ONNX 1.12 CONFIG QUIET)
if(ONNX_FOUND AND Protobuf_FOUND)
  set(VIT_HAVE_ONNX ON)
  message(STATUS "ONNX ${ONNX_VERSION}: vit export --format onnx")
elseif(VIT_REQUIRE_OPENCV)
  vit_require(Protobuf_FOUND "protobuf" "libprotobuf-dev")
  vit_require(ONNX_FOUND "ONNX (find_package(ONNX))" "libonnx-dev")
else()
  set(VIT_HAVE_ONNX OFF)
  message(WARNING "ONNX not found (Debian package 'libonnx-dev'): vit export --format onnx is unavailable")
endif()
if(VIT_HAVE_OPENCV)
  find_package(ZLIB QUIET)
  vit_require(ZLIB_FOUND "zlib" "zlib1g-dev")
endif()

if(VIT_BUILD_TESTS)
  find_package(Catch2 2 QUIET)
  if(NOT Catch2_FOUND)
    find_package(Catch2 3 QUIET)
  endif()
  vit_require(Catch2_FOUND "Catch2" "catch2")
endif()
