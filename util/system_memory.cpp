#include "util/system_memory.h"

#include <unistd.h>

#include <cstdio>
#include <stdexcept>

namespace vit {

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

void require_fits_in_memory(double bytes, const std::string& what, const std::string& remedy) {
  const uint64_t memory = physical_memory_bytes();
  if (memory == 0 || bytes <= static_cast<double>(memory)) return;
  char machine[96];
  std::snprintf(machine, sizeof machine, ", more than this machine's %.1f GiB of memory",
                gib(static_cast<double>(memory)));
  throw std::invalid_argument(what + machine + (remedy.empty() ? "" : "; " + remedy));
}

}  // namespace vit
