#include "app/architecture_options.h"

#include <optional>

namespace vit::app {
namespace {

// An option that sets a std::optional only when given, so the preset's value stays otherwise.
template <typename T>
CLI::Option* add_override(CLI::App* cli, const std::string& name, std::optional<T>& target, const std::string& help) {
  return cli->add_option_function<T>(name, [&target](const T& value) { target = value; }, help);
}

}  // namespace

void add_architecture_options(CLI::App* cli, std::string& model, engine::ModelOverrides& v, const std::string& group) {
  cli->add_option("--model", model, "Preset (see `vit info --help`)")->capture_default_str()->group(group);
  add_override(cli, "--image-size", v.image_size, "Input image size in pixels (square)")->group(group);
  add_override(cli, "--patch-size", v.patch_size, "Patch size in pixels")->group(group);
  add_override(cli, "--in-chans", v.in_chans, "Input channels: 1 (grayscale) or 3 (RGB)")->group(group);
  add_override(cli, "--embed-dim", v.embed_dim, "Token width")->group(group);
  add_override(cli, "--depth", v.depth, "Number of encoder blocks")->group(group);
  add_override(cli, "--num-heads", v.num_heads, "Attention heads")->group(group);
  add_override(cli, "--mlp-ratio", v.mlp_ratio, "MLP hidden width / token width")->group(group);
  add_override(cli, "--global-pool", v.global_pool, "Pooling before the head")
      ->check(CLI::IsMember({"token", "avg"}))
      ->group(group);
  add_override(cli, "--drop", v.drop_rate, "Dropout before the head")->group(group);
  add_override(cli, "--drop-path", v.drop_path, "Stochastic depth rate (last block)")->group(group);
  add_override(cli, "--patch-drop", v.patch_drop, "Fraction of patch tokens dropped per training image (PatchDropout)")
      ->group(group);
}

}  // namespace vit::app
