#include "models/cpu_vector_width.h"

namespace vit::cpu {
namespace {

// The widest vector this CPU runs, found once.
int widest_lanes() {
  static const int lanes = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
      return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 8;
#endif
    return 4;
  }();
  return lanes;
}

int chosen_lanes = 0;  // 0: the widest

}  // namespace

int vector_lanes() { return chosen_lanes > 0 ? chosen_lanes : widest_lanes(); }

void set_vector_lanes(int lanes) {
  chosen_lanes = (lanes == 4 || lanes == 8 || lanes == 16) && lanes <= widest_lanes() ? lanes : 0;
}

}  // namespace vit::cpu
