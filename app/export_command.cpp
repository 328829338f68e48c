#include "app/export_command.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "app/exit_codes.h"
#include "hub/model_argument.h"
#include "models/checkpoint_layouts.h"
#include "models/torchscript_export.h"

namespace vit::app {
namespace {

namespace fs = std::filesystem;

struct ExportOptions {
  std::string model;
  fs::path out;
  std::string format = "torchscript";
  std::optional<int64_t> image_size;
  bool force = false;
};

// --format's folder layouts. "safetensors", the name before 0.2, is still read as "timm".
std::optional<WeightsLayout> folder_layout(const std::string& format) {
  if (format == "timm" || format == "safetensors") return WeightsLayout::Timm;
  if (format == "hf") return WeightsLayout::HuggingFace;
  return std::nullopt;  // torchscript: one file
}

int run_export(const ExportOptions& o) {
  if (o.format == "safetensors")
    spdlog::warn(
        "--format safetensors is now called --format timm (the folder is timm's layout); the old name "
        "still works");
  const std::optional<WeightsLayout> folder = folder_layout(o.format);
  std::error_code error;
  if (o.format == "torchscript" && fs::is_directory(o.out, error))
    throw std::invalid_argument("--out '" + o.out.string() + "' is a folder; TorchScript export writes one file");
  if (o.format != "torchscript" && fs::exists(o.out, error) && !fs::is_directory(o.out, error))
    throw std::invalid_argument("--out '" + o.out.string() + "' is a file; --format " + o.format + " writes a folder");
  if (!o.force) {
    for (const auto& file : folder ? checkpoint_folder_files(o.out, *folder) : std::vector<fs::path>{o.out}) {
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
  if (folder) {
    save_checkpoint_folder(o.out, *folder, loaded.model, loaded.metadata);
  } else {
    export_torchscript(loaded.model, loaded.metadata, o.out);
  }
  spdlog::info("wrote {} '{}'", folder ? o.format + " folder" : "TorchScript file", o.out.string());
  return kExitOk;
}

}  // namespace

Command setup_export(CLI::App& app) {
  auto options = std::make_shared<ExportOptions>();
  CLI::App* cli =
      app.add_subcommand("export", "Export a model: TorchScript, or timm / Hugging Face checkpoint folders");
  cli->add_option("MODEL", options->model,
                  "vit weights file, timm / Hugging Face checkpoint (file or folder), or Hugging Face Hub id in the "
                  "local Hugging Face cache")
      ->required();
  cli->add_option("-o,--out", options->out, "TorchScript: the file to write; timm, hf: the folder to write into")
      ->required();
  cli->add_option("--format", options->format,
                  "torchscript (a traced module with the model's settings inside), timm (timm's layout: "
                  "model.safetensors, also a vit weights file, + config.json), hf (Hugging Face "
                  "ViT, DeiT or DINOv2 class); `safetensors` is the old name of timm")
      ->check(CLI::IsMember({"torchscript", "timm", "hf", "safetensors"}))
      ->capture_default_str();
  cli->add_option_function<int64_t>(
         "--image-size", [o = options.get()](const int64_t& size) { o->image_size = size; },
         "Export for this input size (position embeddings resampled)")
      ->check(CLI::PositiveNumber);
  cli->add_flag("--force", options->force, "Replace files that already exist");
  return {cli, [options] { return run_export(*options); }};
}

}  // namespace vit::app
