#include "app/info_command.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "app/exit_codes.h"
#include "hub/model_argument.h"
#include "models/describe_model.h"
#include "models/model_cost.h"
#include "models/presets.h"
#include "models/timm_architectures.h"
#include "util/text.h"

namespace vit::app {
namespace {

struct InfoOptions {
  std::string model;
  std::string format = "text";
  bool list = false;
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
  const int64_t unused = c.image_size - c.grid_size() * c.patch_size;  // timm's convolution ignores them too
  fmt::print("patches       {}x{} of {}x{} pixels = {} tokens{}{}{}{}{}\n", c.grid_size(), c.grid_size(), c.patch_size,
             c.patch_size, c.num_patches(), c.class_token ? " + class token" : "",
             c.dist_token != DistToken::None ? " + distillation token" : "", registers,
             c.no_embed_class && c.num_prefix_tokens() > 0 ? " (position embedding on the patches only)" : "",
             unused > 0 ? fmt::format(" (the last {} pixel rows and columns unused)", unused) : "");
  fmt::print("encoder       {} blocks, width {}, {} heads of {}, MLP {}, {} eps {:g}\n", c.depth, c.embed_dim,
             c.num_heads, c.head_dim(), c.mlp_hidden_dim(),
             c.norm_layer == NormLayer::LayerNorm ? "LayerNorm" : "RMSNorm", c.norm_eps);
  std::vector<std::string> options;  // timm's options beyond the plain ViT
  if (c.pos_embed != PosEmbed::Learn) options.push_back("pos_embed " + to_string(c.pos_embed));
  if (c.embed_norm) options.push_back("patch-embedding norm");
  if (c.pre_norm) options.push_back("norm_pre");
  if (c.block_fn != BlockFn::Block) options.push_back("block_fn " + to_string(c.block_fn));
  if (c.init_values > 0.0) options.push_back(fmt::format("layer scale (init {:g})", c.init_values));
  if (!c.qkv_bias) options.push_back("qkv without bias");
  if (!c.proj_bias) options.push_back("projections without bias");
  if (c.qk_norm) options.push_back("qk_norm");
  if (c.scale_attn_norm) options.push_back("scale_attn_norm");
  if (c.scale_mlp_norm) options.push_back("scale_mlp_norm");
  if (c.mlp_layer != MlpLayer::Mlp) options.push_back("mlp_layer " + to_string(c.mlp_layer));
  if (c.act_layer != Activation::Gelu) options.push_back("act_layer " + to_string(c.act_layer));
  if (!c.final_norm) options.push_back("no final norm");
  if (c.pool_include_prefix) options.push_back("pool includes prefix tokens");
  if (c.dynamic_img_size) options.push_back("dynamic_img_size");
  if (!options.empty()) fmt::print("options       {}\n", join(options));
  fmt::print("pooling       {}{}\n",
             c.dist_token == DistToken::Heads    ? "class and distillation tokens, their heads averaged"
             : c.global_pool == GlobalPool::None ? "none (one output per token)"
                                                 : to_string(c.global_pool),
             c.has_fc_norm() ? " (norm after pooling: fc_norm)" : "");
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

// vit's presets and timm's registry, with what vit builds of it.
void print_list(const std::string& format) {
  const auto& timm = timm_architectures();
  if (format == "json") {
    nlohmann::json out{{"presets", preset_names()}, {"timm", nlohmann::json::array()}};
    for (const auto& a : timm) {
      nlohmann::json entry{
          {"name", a.name}, {"pretrained_tag", a.pretrained_tag}, {"supported", a.unsupported.empty()}};
      if (a.unsupported.empty()) {
        entry["image_size"] = a.config.image_size;
        entry["parameters"] = count_parameters(a.config);
      } else {
        entry["unsupported"] = a.unsupported;
      }
      out["timm"].push_back(entry);
    }
    std::cout << out.dump(2) << '\n';
    return;
  }
  fmt::print("vit's presets: {}\n\n", join(preset_names()));
  const auto supported = std::count_if(timm.begin(), timm.end(), [](const auto& a) { return a.unsupported.empty(); });
  fmt::print("timm's Vision Transformer architectures ({} of {} supported):\n", supported, timm.size());
  for (const auto& a : timm) {
    if (a.unsupported.empty()) {
      fmt::print("  {:<44} {:>4} px {:>10.1f} M params\n", a.name, a.config.image_size,
                 static_cast<double>(count_parameters(a.config)) / 1e6);
    } else {
      fmt::print("  {:<44} not supported: {}\n", a.name, a.unsupported);
    }
  }
}

}  // namespace

Command setup_info(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cli = app.add_subcommand("info", "Describe a model preset, weights file or checkpoint");
  auto* model = cli->add_option("MODEL", options->model,
                                "Preset or timm architecture name (e.g. vit_base_patch16_224, "
                                "deit3_small_patch16_224), vit weights file, timm / Hugging Face checkpoint "
                                "(file or folder), or an ONNX file vit exported")
                    ->type_name("NAME|FILE");
  auto* list = cli->add_flag("--list", options->list,
                             "List vit's presets and timm's Vision Transformer architectures, with which vit builds");
  model->excludes(list);
  cli->parse_complete_callback([options] {
    if (!options->list && options->model.empty()) throw CLI::RequiredError("MODEL (or --list)");
  });
  cli->footer("vit's presets: " + join(preset_names()) + "; timm's architectures: vit info --list");
  cli->add_option("--format", options->format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  return {cli, [options] {
            if (options->list) {
              print_list(options->format);
              return kExitOk;
            }
            ModelDescription description = describe_model(hub::resolve_model_argument(options->model));
            description.source = options->model;  // as the user named it, a Hub id included
            if (options->format == "json") {
              print_json(description);
            } else {
              print_text(description);
            }
            return kExitOk;
          }};
}

}  // namespace vit::app
