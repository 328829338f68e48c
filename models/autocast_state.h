#pragma once
// Autocast's per-device state, read and set the same way across LibTorch 1.13 and 2.x: LibTorch 2.4 replaced the
// per-device functions (is_cpu_enabled, set_autocast_gpu_dtype, ...) by ones that take the device. The one place
// that knows both spellings; engine::AutocastGuard turns autocast on, the CPU kernels ask whether it is on.

#include <c10/core/DeviceType.h>

namespace vit {

// Whether autocast is on for `device` (CPU or CUDA), in whatever low-precision type.
bool autocast_enabled(c10::DeviceType device);

// Whether autocast is on for `device` with bfloat16 as its type.
bool bf16_autocast(c10::DeviceType device);

// Turns bfloat16 autocast on or off for `device` (the nesting count and weight cache are the caller's).
void set_bf16_autocast(c10::DeviceType device, bool on);

}  // namespace vit
