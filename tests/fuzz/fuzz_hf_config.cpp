// Hugging Face transformers' config.json and preprocessor_config.json (models/hf_checkpoint.h): model_type, sizes,
// layer_norm_eps, id2label, image_mean/std, size, resample, read against the tensor shapes of a small
// ViTForImageClassification checkpoint (small_checkpoints.h). The input holds both files, separated by a line
// "----8<----".
#include <nlohmann/json.hpp>

#include "models/hf_checkpoint.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/small_checkpoints.h"

namespace {

const vit::TensorShapes& checkpoint() {
  static const vit::TensorShapes shapes = [] {
    const auto model = vit::fuzz::token_model();
    return vit::fuzz::shapes_of(vit::timm_to_hf(vit::fuzz::tensors_of(model.config), model.config));
  }();
  return shapes;
}

nlohmann::json parse_or_discarded(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = vit::fuzz::split_parts(data, size, 2);
  const auto config = parse_or_discarded(parts[0]);
  if (config.is_discarded()) return 0;  // the JSON parser itself is nlohmann's, fuzzed upstream
  const auto preprocessor = parse_or_discarded(parts[1]);
  const nlohmann::json* preprocessor_or_null = preprocessor.is_discarded() ? nullptr : &preprocessor;
  vit::fuzz::expect_result_or_clear_error("fuzz-hf", [&] {
    if (!vit::is_hf_config(config)) return;
    const auto metadata = vit::hf_metadata(config, preprocessor_or_null, checkpoint(), "fuzz-hf");
    metadata.validate();
  });
  return 0;
}
