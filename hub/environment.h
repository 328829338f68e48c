#pragma once
// Reading the environment variables huggingface_hub defines (HF_HOME, HF_ENDPOINT, HF_TOKEN, ...).

#include <cstdlib>
#include <string>

namespace vit::hub {

// The variable's value; empty when unset (huggingface_hub treats an empty value as unset too).
inline std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

}  // namespace vit::hub
