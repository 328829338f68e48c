#pragma once
// Device and thread settings shared by training, evaluation and classification.

#include <string>

#include <c10/core/Device.h>

namespace vit::engine {

// "cpu" or "cuda"; throws std::invalid_argument when CUDA is asked for but this build or machine has none.
c10::Device select_device(const std::string& name);

// LibTorch's intra-op threads: `threads`, or one per core when 0.
void set_threads(int threads);

// The threads each of `local_processes` processes on this machine should use when the user did not choose:
// OMP_NUM_THREADS when set (torchrun sets 1 for several processes), else the cores shared out evenly.
int threads_per_process(int local_processes);

// Decode threads when the user did not choose: few, because on small machines the cores belong to the model.
int default_workers();

// Makes malloc keep the memory that tensors free for the next ones, instead of handing it back to the kernel.
// glibc's defaults mmap every block above 32 MiB (a ViT's activations at batch 256) and unmap it on free, and
// trim the heap's top: each step then faults every page of its activations in again, which on a virtual
// machine costs more than the arithmetic (measured: inference 5x slower than with reuse). Call once, early.
// Left alone when the user configured malloc (GLIBC_TUNABLES naming glibc.malloc, MALLOC_*_ variables) or set
// VIT_MALLOC=system. Returns what was done, for logs and `vit bench`.
std::string configure_memory_reuse();

}  // namespace vit::engine
