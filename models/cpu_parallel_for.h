#pragma once
// at::parallel_for for vit's own CPU kernels. LibTorch's parallel_for is a header template: with LibTorch's
// OpenMP backend (Debian's and pip's builds) it splits work across LibTorch's threads only in code compiled with
// OpenMP, and silently runs the whole range on the calling thread elsewhere. Every unit that calls it includes
// this header instead of <ATen/Parallel.h>, so that a target built without OpenMP fails to compile rather than
// running its kernels on one thread of --threads N.

#include <ATen/Parallel.h>

#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "at::parallel_for runs serially in code compiled without OpenMP: link this target to OpenMP::OpenMP_CXX"
#endif
