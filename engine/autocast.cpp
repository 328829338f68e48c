#include "engine/autocast.h"

#include <ATen/autocast_mode.h>

#include "models/autocast_state.h"

namespace vit::engine {

AutocastGuard::AutocastGuard(c10::DeviceType device, bool enabled) : device_(device), enabled_(enabled) {
  if (!enabled_) return;
  set_bf16_autocast(device_, true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  set_bf16_autocast(device_, false);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

}  // namespace vit::engine
