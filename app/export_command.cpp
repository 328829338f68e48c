#include "app/export_command.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "app/exit_codes.h"
#include "models/model_file.h"
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

// The files an export writes, to refuse overwriting what is already there unless --force.
std::vector<fs::path> outputs(const ExportOptions& o) {
  if (o.format == "torchscript") return {o.out};
  std::vector<fs::path> files{o.out / "model.safetensors", o.out / "config.json"};
  if (o.format == "hf") files.push_back(o.out / "preprocessor_config.json");
  return files;
}

int run_export(const ExportOptions& o) {
  std::error_code error;
  if (o.format == "torchscript" && fs::is_directory(o.out, error))
    throw std::invalid_argument("--out '" + o.out.string() + "' is a folder; TorchScript export writes one file");
  if (o.format != "torchscript" && fs::exists(o.out, error) && !fs::is_directory(o.out, error))
    throw std::invalid_argument("--out '" + o.out.string() + "' is a file; --format " + o.format +
                                " writes a folder");
  if (!o.force) {
    for (const auto& file : outputs(o)) {
      if (fs::exists(file, error))
        throw std::invalid_argument("'" + file.string() + "' already exists; pass --force to replace it");
    }
  }

  WeightsLayout layout;
  LoadedModel loaded = load_model_file(o.model, o.image_size, &layout);
  spdlog::info("read '{}' ({}): {}x{} input, {} classes", o.model, to_string(layout),
               loaded.metadata.config.image_size, loaded.metadata.config.image_size,
               loaded.metadata.config.num_classes);
  if (o.format == "hf" && loaded.metadata.preprocess.crop_pct != 1.0)
    spdlog::warn("Hugging Face's ViTImageProcessor resizes to {0}x{0} without cropping: this model's crop_pct {1} "
                 "cannot be written to preprocessor_config.json (reading the folder back gives crop_pct 1)",
                 loaded.metadata.config.image_size, loaded.metadata.preprocess.crop_pct);
  if (o.format == "torchscript") {
    export_torchscript(loaded.model, loaded.metadata, o.out);
  } else {
    save_checkpoint_folder(o.out, o.format == "hf" ? WeightsLayout::HuggingFace : WeightsLayout::Timm, loaded.model,
                           loaded.metadata);
  }
  spdlog::info("wrote {} '{}'", o.format == "torchscript" ? "TorchScript file" : o.format + " folder", o.out.string());
  return kExitOk;
}

}  // namespace

Command setup_export(CLI::App& app) {
  auto options = std::make_shared<ExportOptions>();
  CLI::App* cli = app.add_subcommand("export", "Export a model: TorchScript, or timm / Hugging Face checkpoint folders");
  cli->add_option("MODEL", options->model,
                  "vit weights file, or timm / Hugging Face checkpoint (file or folder)")
      ->required();
  cli->add_option("-o,--out", options->out,
                  "TorchScript: the file to write; safetensors, hf: the folder to write into")
      ->required();
  cli->add_option("--format", options->format,
                  "torchscript (a traced module with the model's settings inside), safetensors (timm's layout + "
                  "config.json; also a vit weights file), hf (Hugging Face ViTForImageClassification)")
      ->check(CLI::IsMember({"torchscript", "safetensors", "hf"}))
      ->capture_default_str();
  cli->add_option_function<int64_t>(
         "--image-size", [o = options.get()](const int64_t& size) { o->image_size = size; },
         "Export for this input size (position embeddings resampled)")
      ->check(CLI::PositiveNumber);
  cli->add_flag("--force", options->force, "Replace files that already exist");
  return {cli, [options] { return run_export(*options); }};
}

}  // namespace vit::app
