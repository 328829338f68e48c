#include "models/autocast_state.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

// LibTorch 2.4 and later: autocast's functions take the device.
#define VIT_AUTOCAST_TAKES_DEVICE (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))

namespace vit {

bool autocast_enabled(c10::DeviceType device) {
#if VIT_AUTOCAST_TAKES_DEVICE
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

bool bf16_autocast(c10::DeviceType device) {
  if (!autocast_enabled(device)) return false;
#if VIT_AUTOCAST_TAKES_DEVICE
  return at::autocast::get_autocast_dtype(device) == at::kBFloat16;
#else
  return (device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                          : at::autocast::get_autocast_cpu_dtype()) == at::kBFloat16;
#endif
}

void set_bf16_autocast(c10::DeviceType device, bool on) {
#if VIT_AUTOCAST_TAKES_DEVICE
  if (on) at::autocast::set_autocast_dtype(device, at::kBFloat16);
  at::autocast::set_autocast_enabled(device, on);
#else
  if (device == c10::DeviceType::CUDA) {
    if (on) at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(on);
  } else {
    if (on) at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(on);
  }
#endif
}

}  // namespace vit
