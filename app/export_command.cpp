#include "app/export_command.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "app/cli_checks.h"
#include "app/exit_codes.h"
#include "hub/model_argument.h"
#include "models/checkpoint_layouts.h"
#include "models/onnx_export.h"
#include "models/torchscript_export.h"
#include "util/text.h"

namespace vit::app {
namespace {

namespace fs = std::filesystem;

struct ExportOptions {
  std::string model;
  fs::path out;
  std::string format = "torchscript";
  std::optional<int64_t> image_size;
  bool force = false;
  OnnxExportOptions onnx;
  bool opset_given = false;
};

// --batch: a positive size, or `dynamic`.
std::optional<int64_t> parse_batch(const std::string& text) {
  if (text == "dynamic") return std::nullopt;
  const auto value = parse_integer(text);
  if (!value || *value < 1)
    throw CLI::ValidationError("--batch", "expected a positive batch size or 'dynamic', got '" + text + "'");
  return value;
}

// --format's folder layouts. "safetensors", the name before 0.2, is still read as "timm".
std::optional<WeightsLayout> folder_layout(const std::string& format) {
  if (format == "timm" || format == "safetensors") return WeightsLayout::Timm;
  if (format == "hf") return WeightsLayout::HuggingFace;
  return std::nullopt;  // torchscript, onnx: one file
}

// The files an export writes: a folder's files, or one file (ONNX: maybe with its external data beside it).
std::vector<fs::path> written_files(const ExportOptions& o, const std::optional<WeightsLayout>& folder) {
  if (folder) return checkpoint_folder_files(o.out, *folder);
  if (o.format == "onnx") return {o.out, fs::path(o.out.string() + ".data")};
  return {o.out};
}

int run_export(const ExportOptions& o) {
  if (o.format == "safetensors")
    spdlog::warn(
        "--format safetensors is now called --format timm (the folder is timm's layout); the old name "
        "still works");
  const std::optional<WeightsLayout> folder = folder_layout(o.format);
  std::error_code error;
  if (!folder && fs::is_directory(o.out, error))
    throw std::invalid_argument("--out '" + o.out.string() + "' is a folder; --format " + o.format +
                                " writes one file");
  if (folder && fs::exists(o.out, error) && !fs::is_directory(o.out, error))
    throw std::invalid_argument("--out '" + o.out.string() + "' is a file; --format " + o.format + " writes a folder");
  if (o.format != "onnx" && (o.onnx.batch || o.onnx.external_data || o.opset_given))
    throw std::invalid_argument("--opset, --batch and --external-data are for --format onnx");
  if (o.format == "onnx") {
    if (!onnx_export_available())
      throw std::invalid_argument("this vit was built without ONNX (Debian package 'libonnx-dev'): --format onnx "
                                  "is unavailable");
    validate_onnx_options(o.onnx);  // before the model is read: --opset's explanation
  }
  if (!o.force) {
    for (const auto& file : written_files(o, folder)) {
      if (fs::exists(file, error))
        throw std::invalid_argument("'" + file.string() + "' already exists; pass --force to replace it");
    }
  }

  WeightsLayout layout;
  LoadedModel loaded = load_checkpoint(hub::resolve_model_argument(o.model), o.image_size, &layout);
  spdlog::info("read '{}' ({}): {}x{} input, {} classes", o.model, to_string(layout), loaded.metadata.config.image_size,
               loaded.metadata.config.image_size, loaded.metadata.config.num_classes);
  if (o.format == "hf" && loaded.metadata.preprocess.crop_pct != 1.0)
    spdlog::warn(
        "Hugging Face's ViTImageProcessor resizes to {0}x{0} without cropping: this model's crop_pct {1} "
        "cannot be written to preprocessor_config.json (reading the folder back gives crop_pct 1)",
        loaded.metadata.config.image_size, loaded.metadata.preprocess.crop_pct);
  std::string what = "TorchScript file";
  if (folder) {
    save_checkpoint_folder(o.out, *folder, loaded.model, loaded.metadata);
    what = o.format + " folder";
  } else if (o.format == "onnx") {
    const bool external = export_onnx(loaded.model, loaded.metadata, o.out, o.onnx);
    what = "ONNX file (opset " + std::to_string(o.onnx.opset) + ", batch " +
           (o.onnx.batch ? std::to_string(*o.onnx.batch) : std::string("dynamic")) +
           (external ? ", weights in '" + o.out.string() + ".data'" : "") + ")";
  } else {
    export_torchscript(loaded.model, loaded.metadata, o.out);
  }
  spdlog::info("wrote {} '{}'", what, o.out.string());
  return kExitOk;
}

}  // namespace

Command setup_export(CLI::App& app) {
  auto options = std::make_shared<ExportOptions>();
  options->onnx.producer_version = VIT_VERSION;
  CLI::App* cli = app.add_subcommand(
      "export", "Export a model: TorchScript, ONNX, or timm / Hugging Face checkpoint folders");
  cli->add_option("MODEL", options->model,
                  "vit weights file, timm / Hugging Face checkpoint (file or folder), or Hugging Face Hub id in the "
                  "local Hugging Face cache")
      ->required();
  cli->add_option("-o,--out", options->out,
                  "TorchScript, ONNX: the file to write; timm, hf: the folder to write into")
      ->required();
  cli->add_option("--format", options->format,
                  "torchscript (a traced module with the model's settings inside), onnx (for ONNX Runtime, "
                  "TensorRT, OpenVINO: input `images`, output `logits`, preprocessing and class names in the "
                  "metadata), timm (timm's layout: model.safetensors, also a vit weights file, + config.json), hf "
                  "(Hugging Face ViT, DeiT or DINOv2 class); `safetensors` is the old name of timm")
      ->check(CLI::IsMember({"torchscript", "onnx", "timm", "hf", "safetensors"}))
      ->capture_default_str();
  cli->add_option_function<int64_t>(
         "--image-size", [o = options.get()](const int64_t& size) { o->image_size = size; },
         "Export for this input size (position embeddings resampled)")
      ->check(whole_number_from(1));
  cli->add_option_function<int>(
         "--opset",
         [o = options.get()](const int& opset) {
           o->onnx.opset = opset;
           o->opset_given = true;
         },
         "ONNX: the operator set, " + std::to_string(kMinOnnxOpset) + " to " + std::to_string(kMaxOnnxOpset) +
             " (default " + std::to_string(kMaxOnnxOpset) +
             "; 17 has LayerNormalization, older ones spell it out)");
  cli->add_option_function<std::string>(
         "--batch", [o = options.get()](const std::string& text) { o->onnx.batch = parse_batch(text); },
         "ONNX: a fixed batch size, or `dynamic` (the default: any batch)");
  cli->add_flag("--external-data", options->onnx.external_data,
                "ONNX: weights in a data file beside the model (OUT.data), as models over 1.5 GiB of weights "
                "always are (protobuf's 2 GiB limit)");
  cli->add_flag("--force", options->force, "Replace files that already exist");
  return {cli, [options] { return run_export(*options); }};
}

}  // namespace vit::app
