#pragma once
// Everything `vit train` can be told, as one struct, so tests and other front ends drive training without the CLI.
// Defaults follow timm's train.py where it has one.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "engine/json_optional.h"

#include "engine/mixup.h"
#include "models/vit_config.h"

namespace vit::engine {

// Changes to a preset's architecture (`vit train`, `vit bench`): each an optional ViTConfig field.
struct ArchitectureOverrides {
  std::optional<int64_t> image_size;
  std::optional<int64_t> patch_size;
  std::optional<int64_t> in_chans;
  std::optional<int64_t> embed_dim;
  std::optional<int64_t> depth;
  std::optional<int64_t> num_heads;
  std::optional<double> mlp_ratio;
  std::optional<GlobalPool> global_pool;  // also sets fc_norm as timm does (on for avg, max, avgmax)
  std::optional<double> drop_rate;
  std::optional<double> drop_path;
  std::optional<double> patch_drop;
  std::optional<bool> class_token;
  std::optional<int64_t> reg_tokens;
  std::optional<double> init_values;
  std::optional<PosEmbed> pos_embed;
};

// What the override table says about one override: its name in run folders' JSON, its command-line option.
struct OverrideInfo {
  const char* key;
  const char* option;
  const char* help;
};

// Every override once, as visit(OverrideInfo, &ArchitectureOverrides::member, &ViTConfig::member): applying them,
// their command-line options and their JSON all walk this table.
template <typename Visit>
void for_each_override(Visit&& visit) {
  using O = ArchitectureOverrides;
  visit(OverrideInfo{"image_size", "--image-size", "Input image size in pixels (square)"}, &O::image_size,
        &ViTConfig::image_size);
  visit(OverrideInfo{"patch_size", "--patch-size", "Patch size in pixels"}, &O::patch_size, &ViTConfig::patch_size);
  visit(OverrideInfo{"in_chans", "--in-chans", "Input channels: 1 (grayscale) or 3 (RGB)"}, &O::in_chans,
        &ViTConfig::in_chans);
  visit(OverrideInfo{"embed_dim", "--embed-dim", "Token width"}, &O::embed_dim, &ViTConfig::embed_dim);
  visit(OverrideInfo{"depth", "--depth", "Number of encoder blocks"}, &O::depth, &ViTConfig::depth);
  visit(OverrideInfo{"num_heads", "--num-heads", "Attention heads"}, &O::num_heads, &ViTConfig::num_heads);
  visit(OverrideInfo{"mlp_ratio", "--mlp-ratio", "MLP hidden width / token width"}, &O::mlp_ratio,
        &ViTConfig::mlp_ratio);
  visit(OverrideInfo{"global_pool", "--global-pool", "Pooling before the head"}, &O::global_pool,
        &ViTConfig::global_pool);
  visit(OverrideInfo{"drop_rate", "--drop", "Dropout before the head"}, &O::drop_rate, &ViTConfig::drop_rate);
  visit(OverrideInfo{"drop_path", "--drop-path", "Stochastic depth rate (last block)"}, &O::drop_path,
        &ViTConfig::drop_path_rate);
  visit(
      OverrideInfo{"patch_drop", "--patch-drop", "Fraction of patch tokens dropped per training image (PatchDropout)"},
      &O::patch_drop, &ViTConfig::patch_drop_rate);
  visit(OverrideInfo{"class_token", "--class-token",
                     "Whether a learned class token precedes the patch tokens (timm's class_token; false needs a "
                     "pool other than token or token_avg)"},
        &O::class_token, &ViTConfig::class_token);
  visit(OverrideInfo{"reg_tokens", "--reg-tokens", "Register tokens after the class token (DINOv2 with registers)"},
        &O::reg_tokens, &ViTConfig::reg_tokens);
  visit(OverrideInfo{"init_values", "--init-values", "Layer scale's starting value (DeiT-III, DINOv2); 0 = none"},
        &O::init_values, &ViTConfig::init_values);
  visit(OverrideInfo{"pos_embed", "--pos-embed", "Position embedding: learned, fixed 2-D sine-cosine (MAE's), or none"},
        &O::pos_embed, &ViTConfig::pos_embed);
}

// Sets the fields `overrides` names; --global-pool also sets fc_norm, as timm pairs them.
void apply_overrides(ViTConfig& config, const ArchitectureOverrides& overrides);

// JSON with every override under its key, null when not given; a key missing from a file reads as not given.
void to_json(nlohmann::json& j, const ArchitectureOverrides& overrides);
void from_json(const nlohmann::json& j, ArchitectureOverrides& overrides);

// The largest --cache-images (1 TiB): its byte count must fit in 64 bits with room to spare.
constexpr int64_t kMaxCacheImagesMiB = int64_t{1} << 20;

struct TrainOptions {
  // Data and outputs.
  std::filesystem::path data_dir;
  std::filesystem::path out_dir;
  std::optional<std::filesystem::path> val_dir;  // default: DATA_DIR/val next to DATA_DIR/train
  double val_split = 0.0;                        // hold out this fraction per class when there is no val folder
  // Validate after every val_every-th epoch and after the run's last (the one --epochs or --time-limit ends it
  // with): the epochs between keep their weights and resume state but cost no validation.
  int64_t val_every = 1;
  std::string val_tta = "none";  // validation's test-time augmentation: "none" | "hflip" (test_time_augmentation.h)
  int64_t max_pixels = 100'000'000;              // decompression-bomb guard

  // Model.
  std::string model = "vit_tiny_patch16_224";
  ArchitectureOverrides overrides;
  std::optional<std::filesystem::path> init;  // start from these weights (head re-initialised if classes differ)

  // Optimisation.
  int64_t epochs = 10;
  int64_t batch_size = 64;
  double lr = 5e-4;
  double min_lr = 1e-6;
  double weight_decay = 0.05;
  // AdamW's decay rates of its gradient average and squared-gradient average (timm's --opt-betas). A lower beta2
  // (0.95, 0.98) lets the step size follow the gradients' scale sooner, which short runs gain from.
  double beta1 = 0.9;
  double beta2 = 0.999;
  double warmup_epochs = 1.0;
  double label_smoothing = 0.1;
  double clip_grad = 0.0;  // max global gradient norm; 0 = off
  int64_t grad_accum = 1;  // micro-batches per optimizer step
  // The last share of the run (of its steps, or of --time-limit's training time, whichever comes first) trains with
  // PatchDropout off, every token seen: its own cosine cycle from tail_lr (default lr / 4) down to min_lr, after
  // the first cycle has decayed to min_lr at its start. 0 = no tail.
  double patch_drop_tail = 0.0;
  std::optional<double> tail_lr;

  // Augmentation.
  double scale_min = 0.08;
  double scale_max = 1.0;
  double ratio_min = 3.0 / 4.0;
  double ratio_max = 4.0 / 3.0;
  double hflip = 0.5;
  std::string auto_augment = "none";  // "none" | "trivial" | "rand"
  int ra_num_ops = 2;
  int ra_magnitude = 9;
  double random_erasing = 0.0;
  MixupOptions mixup;

  // Model EMA.
  bool ema = false;
  double ema_decay = 0.9998;

  // Execution.
  std::string amp = "none";         // "none" | "bf16"
  std::string device = "cpu";       // "cpu" | "cuda"
  int threads = 0;                  // LibTorch intra-op threads; 0 = one per core
  int workers = 0;                  // decode threads; 0 = chosen from the core count
  int64_t cache_images_mib = 2048;  // decoded images kept in memory between epochs (data/image_cache.h); 0 = none
  uint64_t seed = 42;
  double time_limit = 0.0;  // seconds for the whole run; 0 = none. The schedule runs on time (time_budget.h).
  bool resume = false;

  // Several processes (torchrun, Slurm): read from the launcher's environment, see engine/distributed_env.h.
  std::string dist_backend = "auto";  // "auto" (NCCL with --device cuda where built, else Gloo) | "gloo" | "nccl"
  double dist_timeout = 600.0;        // seconds a rank waits for the others before it gives up on them

  // Throws std::invalid_argument naming the option (as its command-line flag) and the value.
  void validate() const;
  // The rate --patch-drop-tail's cycle starts from.
  double tail_start_lr() const { return tail_lr.value_or(lr / 4.0); }
};

// JSON with every field under its own name: the run directory's config.json and the resume state. A field missing
// from a file (one written before the field existed) takes its default.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MixupOptions, mixup_alpha, cutmix_alpha, prob, switch_prob)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TrainOptions, data_dir, out_dir, val_dir, val_split, val_every, val_tta,
                                                max_pixels, model, overrides, init, epochs, batch_size, lr, min_lr,
                                                weight_decay, beta1, beta2, warmup_epochs, label_smoothing, clip_grad,
                                                grad_accum, patch_drop_tail, tail_lr, scale_min, scale_max, ratio_min,
                                                ratio_max, hflip, auto_augment, ra_num_ops, ra_magnitude,
                                                random_erasing, mixup, ema, ema_decay, amp, device, threads, workers,
                                                cache_images_mib, seed, time_limit, resume, dist_backend, dist_timeout)

}  // namespace vit::engine
