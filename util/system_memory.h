#pragma once
// How much memory the machine has, to refuse work that cannot fit before allocating it: a process that asks for
// more than there is is killed by the kernel's OOM killer without a word, often after minutes of swapping.

#include <cstdint>
#include <string>

namespace vit {

// Physical memory in bytes (sysconf), or 0 where the system does not say.
uint64_t physical_memory_bytes();

// Bytes in GiB, for messages.
double gib(double bytes);

// Throws std::invalid_argument "<what>, more than this machine's X GiB of memory[; <remedy>]" when `bytes` exceed
// the machine's physical memory; never where the system does not say how much there is.
void require_fits_in_memory(double bytes, const std::string& what, const std::string& remedy = "");

}  // namespace vit
