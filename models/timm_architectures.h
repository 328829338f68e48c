#pragma once
// timm's registry of Vision Transformer architectures: the 173 names timm registers in vision_transformer.py and
// deit.py, each with its constructor arguments and default preprocessing. The data is models/timm_architectures.json,
// generated from timm's source by scripts/make_timm_registry.py and compiled into the library.
//
// The arguments use timm's names (model_args in a timm config.json use the same), so one reader serves both:
// apply_timm_args. Arguments that are classes in timm are strings here: norm_layer "layernorm" | "rmsnorm" (with
// "norm_eps" where timm's partial sets one), mlp_layer "swiglu" | "swiglu_packed", block_fn "res_post" |
// "parallel_things" | "parallel_scaling", and "distilled": true for DeiT's VisionTransformerDistilled.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "models/vit_config.h"

namespace vit {

struct TimmArchitecture {
  std::string name;            // e.g. "deit3_small_patch16_224"
  std::string pretrained_tag;  // timm's default pretrained tag, e.g. "fb_in1k" (empty when timm has none)
  const nlohmann::json* args;  // timm's constructor arguments, incl. img_size, in_chans and num_classes
  PreprocessConfig preprocess;
  // Empty when vit builds this architecture; otherwise the first option it does not, e.g.
  // "attn_layer = \"diff\"".
  std::string unsupported;
  ViTConfig config;  // the architecture, when supported
};

// Every registered name, in timm's order.
const std::vector<TimmArchitecture>& timm_architectures();

// By name, with or without a pretrained tag ("vit_base_patch16_224.augreg_in21k"); nullptr when unknown.
const TimmArchitecture* find_timm_architecture(std::string_view name);

// Which arguments apply_timm_args takes.
enum class TimmArgs {
  All,          // every one: the architecture is built from the arguments alone
  NotInShapes,  // only what a checkpoint's tensor shapes cannot tell (heads, activation, eps, ...)
  // The same for a checkpoint's own model_args, whose other values must agree with what the shapes told
  // (`config` on entry): a contradiction is an error naming the argument.
  CheckShapes,
};

// Applies timm's VisionTransformer constructor arguments to `config`. Throws std::invalid_argument naming the
// argument and `architecture` for an option vit does not build ("... is not supported by vit") and for a key that
// is not an argument of timm's VisionTransformer.
void apply_timm_args(const nlohmann::json& args, ViTConfig& config, const std::string& architecture, TimmArgs which);

}  // namespace vit
