#pragma once
// How much memory the machine has, to refuse work that cannot fit before allocating it: a process that asks for
// more than there is is killed by the kernel's OOM killer without a word, often after minutes of swapping.

#include <cstdint>

namespace vit {

// Physical memory in bytes (sysconf), or 0 where the system does not say.
uint64_t physical_memory_bytes();

}  // namespace vit
