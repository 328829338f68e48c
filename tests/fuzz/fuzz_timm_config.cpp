// timm's hub config.json (models/timm_checkpoint.h): architecture, num_classes, global_pool, model_args and
// pretrained_cfg (input_size, interpolation, crop_pct, mean, std, label_names), read against the tensor shapes of
// a small checkpoint (small_checkpoints.h). The first byte picks the checkpoint, the rest is the file.
#include <nlohmann/json.hpp>

#include "models/timm_checkpoint.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/small_checkpoints.h"

namespace {

const std::vector<vit::TensorShapes>& checkpoints() {
  static const std::vector<vit::TensorShapes> all = [] {
    std::vector<vit::TensorShapes> shapes;
    for (const auto& model : vit::fuzz::small_models())
      shapes.push_back(vit::fuzz::shapes_of(vit::fuzz::tensors_of(model.config)));
    return shapes;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& shapes = checkpoints()[data[0] % checkpoints().size()];
  const auto config = nlohmann::json::parse(data + 1, data + size, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return 0;  // the JSON parser itself is nlohmann's, fuzzed upstream
  vit::fuzz::expect_result_or_clear_error("fuzz-ckpt", [&] {
    const auto metadata = vit::timm_metadata(shapes, &config, "fuzz-ckpt");
    metadata.validate();
    // What timm's format says about an accepted model reads back as the same model.
    const auto again = vit::timm_config(metadata);
    if (vit::metadata_to_json(vit::timm_metadata(shapes, &again, "fuzz-ckpt")) != vit::metadata_to_json(metadata))
      vit::fuzz::finding("an accepted config.json does not survive writing and reading back");
  });
  return 0;
}
