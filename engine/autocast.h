#pragma once
// bfloat16 autocast for a forward pass, on CPU or CUDA, across LibTorch 1.13 and 2.x (whose autocast functions
// differ). There is no C++ GradScaler; bfloat16 needs none.

#include <c10/core/DeviceType.h>

namespace vit::engine {

// Enables bf16 autocast for `device` while alive (when `enabled`). On destruction it disables autocast and clears
// autocast's cache of low-precision weight copies: kept across optimizer steps, that cache would feed the next
// forward pass stale weights.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_;
};

}  // namespace vit::engine
