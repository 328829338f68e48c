#pragma once
// ONNX export of a C++ model, for the runtimes that do not run LibTorch (ONNX Runtime, TensorRT, OpenVINO,
// browsers). The graph is written node by node from the model's config and tensors with the ONNX project's own
// library (Debian's libonnx-dev, ONNX 1.12), checked by its checker and strict shape inference, then written
// atomically. Nothing here includes ONNX's headers: they stay inside onnx_export.cpp and onnx_graph.cpp.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "models/vision_transformer.h"
#include "models/vit_weights_file.h"

namespace vit {

// The opsets the exporter writes. 13 is the first with Softmax over one axis and Split/Slice sizes as inputs;
// 17 is the newest ONNX 1.12 knows (and the first with LayerNormalization).
constexpr int kMinOnnxOpset = 13;
constexpr int kMaxOnnxOpset = 17;

// Protobuf cannot write a message of 2 GiB or more: past this many bytes of weights they go to a data file
// beside the model (ONNX's external data), as ONNX's own Python tools do. ViT-L (1.2 GB) stays in one file.
constexpr int64_t kOnnxExternalDataThreshold = int64_t{1536} << 20;

struct OnnxExportOptions {
  int opset = kMaxOnnxOpset;
  std::optional<int64_t> batch;  // a fixed batch size; none: a dynamic `batch` dimension
  bool external_data = false;    // weights in `<out>.data` whatever the model's size
  std::string producer_version;  // vit's version, recorded in the file
};

// Throws std::invalid_argument explaining an opset outside kMinOnnxOpset..kMaxOnnxOpset or a batch below 1.
void validate_onnx_options(const OnnxExportOptions& options);

// Whether this build can write ONNX (it was built with libonnx-dev).
bool onnx_export_available();

// Writes `out` (and `<out>.data` when the weights go outside it). Input `images`, float32 (batch, C, H, W) at
// the config's image size; output `logits` (batch, classes), or `features` (batch, D) for a model without head,
// with a trailing token dimension for global_pool none. The preprocessing and class names go into the file's
// metadata_props (`vit.json`, and timm's names: input_size, interpolation, crop_pct, mean, std, label_names).
// The model is left in eval mode on the CPU. Throws std::invalid_argument for options out of range and
// std::runtime_error, naming the file, when the checker refuses the graph or writing fails; files already at
// `out` and `<out>.data` are then untouched. Returns true when the weights went to `<out>.data` (an inline export
// removes a `<out>.data` left by an earlier external one).
bool export_onnx(VisionTransformer& model, const ModelMetadata& metadata, const std::filesystem::path& out,
                 const OnnxExportOptions& options = {});

// What an ONNX file holds, read back for `vit info` and the tests.
struct OnnxFileSummary {
  int64_t ir_version = 0;
  int64_t opset = 0;  // of the default domain
  std::string producer;
  struct Value {
    std::string name;
    std::vector<std::string> dims;  // a number, or the name of a symbolic dimension
  };
  std::vector<Value> inputs;
  std::vector<Value> outputs;
  std::set<std::string> op_types;
  int64_t nodes = 0;
  int64_t initializers = 0;
  int64_t external_initializers = 0;  // stored in a data file
  std::map<std::string, std::string> metadata;
};
// Throws std::runtime_error naming the file if it is not an ONNX model.
OnnxFileSummary read_onnx_summary(const std::filesystem::path& path);

}  // namespace vit
