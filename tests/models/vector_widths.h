#pragma once
// The vector widths the CPU kernel tests run vit's kernels at.

#include <vector>

#include "models/cpu_vector_width.h"

namespace vit::test {

// Every vector width vit's kernels have that this CPU runs (the widest last, and left in place).
inline std::vector<int> vector_widths() {
  cpu::set_vector_lanes(0);
  std::vector<int> widths;
  for (const int lanes : {4, 8, 16})
    if (lanes <= cpu::vector_lanes()) widths.push_back(lanes);
  return widths;
}

}  // namespace vit::test
