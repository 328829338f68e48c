#include "app/info_command.h"

#include <cmath>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "app/exit_codes.h"
#include "models/describe_model.h"
#include "models/model_cost.h"
#include "models/presets.h"
#include "util/text.h"

namespace vit::app {
namespace {

struct InfoOptions {
  std::string model;
  std::string format = "text";
};

// 86567656 -> "86,567,656" (counts are never negative)
std::string with_thousands(int64_t count) {
  std::string digits = std::to_string(count);
  for (auto i = static_cast<long>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<size_t>(i), ",");
  return digits;
}

std::string class_summary(const std::vector<std::string>& names) {
  constexpr size_t kShown = 10;
  if (names.empty()) return "0 (no head: the model returns pooled features)";
  std::vector<std::string> shown(names.begin(), names.begin() + static_cast<long>(std::min(names.size(), kShown)));
  return fmt::format("{}: {}{}", names.size(), fmt::join(shown, ", "), names.size() > kShown ? ", ..." : "");
}

void print_text(const ModelDescription& d) {
  const ViTConfig& c = d.metadata.config;
  const PreprocessConfig& p = d.metadata.preprocess;
  const int64_t params = count_parameters(c);
  const double macs = count_macs(c);
  const auto resize = static_cast<int64_t>(std::floor(static_cast<double>(c.image_size) / p.crop_pct));
  fmt::print("model         {} ({})\n", d.source, d.kind);
  fmt::print("input         {} channel{}, {}x{} pixels\n", c.in_chans, c.in_chans == 1 ? "" : "s", c.image_size,
             c.image_size);
  const std::string registers = c.reg_tokens > 0 ? fmt::format(" + {} register tokens", c.reg_tokens) : "";
  fmt::print("patches       {}x{} of {}x{} pixels = {} tokens{}{}{}\n", c.grid_size(), c.grid_size(), c.patch_size,
             c.patch_size, c.num_patches(), c.class_token ? " + class token" : "", registers,
             c.no_embed_class && c.num_prefix_tokens() > 0 ? " (position embedding on the patches only)" : "");
  fmt::print("encoder       {} blocks, width {}, {} heads of {}, MLP {}, LayerNorm eps {:g}\n", c.depth, c.embed_dim,
             c.num_heads, c.head_dim(), c.mlp_hidden_dim(), c.norm_eps);
  std::vector<std::string> options;  // timm's options beyond the plain ViT
  if (c.pre_norm) options.push_back("norm_pre");
  if (c.init_values > 0.0) options.push_back(fmt::format("layer scale (init {:g})", c.init_values));
  if (!c.qkv_bias) options.push_back("qkv without bias");
  if (c.act_layer != Activation::Gelu) options.push_back("act_layer " + to_string(c.act_layer));
  if (!options.empty()) fmt::print("options       {}\n", join(options));
  fmt::print("pooling       {}{}\n", to_string(c.global_pool), c.fc_norm ? " (norm after pooling: fc_norm)" : "");
  fmt::print("parameters    {} ({:.1f} M)\n", with_thousands(params), static_cast<double>(params) / 1e6);
  if (macs >= 1e9) {
    fmt::print("compute       {:.2f} GMACs per image (~{:.2f} GFLOPs)\n", macs / 1e9, 2 * macs / 1e9);
  } else {
    fmt::print("compute       {:.1f} MMACs per image (~{:.1f} MFLOPs)\n", macs / 1e6, 2 * macs / 1e6);
  }
  fmt::print("classes       {}\n", class_summary(d.metadata.class_names));
  fmt::print("preprocess    resize short side to {} ({}), center crop {}, mean [{:g}], std [{:g}]\n", resize,
             to_string(p.interpolation), c.image_size, fmt::join(p.mean, ", "), fmt::join(p.std, ", "));
}

void print_json(const ModelDescription& d) {
  nlohmann::json out{{"model", d.source},
                     {"kind", d.kind},
                     {"config", d.metadata.config},
                     {"preprocess", d.metadata.preprocess},
                     {"class_names", d.metadata.class_names},
                     {"parameters", count_parameters(d.metadata.config)},
                     {"gmacs", count_macs(d.metadata.config) / 1e9}};
  std::cout << out.dump(2) << '\n';
}

}  // namespace

Command setup_info(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cli = app.add_subcommand("info", "Describe a model preset, weights file or checkpoint");
  cli->add_option("MODEL", options->model,
                  "Preset name (e.g. vit_base_patch16_224), vit weights file, or timm / Hugging Face checkpoint (file "
                  "or folder)")
      ->type_name("PRESET|FILE")
      ->required();
  cli->footer("Presets: " + join(preset_names()));
  cli->add_option("--format", options->format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  return {cli, [options] {
            const ModelDescription description = describe_model(options->model);
            if (options->format == "json") {
              print_json(description);
            } else {
              print_text(description);
            }
            return kExitOk;
          }};
}

}  // namespace vit::app
