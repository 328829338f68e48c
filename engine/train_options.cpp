#include "engine/train_options.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "engine/test_time_augmentation.h"

namespace vit::engine {
namespace {

template <typename T>
std::string str(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

void require(bool ok, const std::string& flag, const std::string& expected, const std::string& got) {
  if (!ok) throw std::invalid_argument(flag + ": expected " + expected + ", got " + got);
}

}  // namespace

void TrainOptions::validate() const {
  // Infinity passes every range check below, trains nothing sensible and is written to JSON as null, which the run
  // folder's own config.json and resume state then cannot be read back from.
  const std::pair<const char*, double> reals[] = {{"--val-split", val_split},
                                                  {"--lr", lr},
                                                  {"--min-lr", min_lr},
                                                  {"--weight-decay", weight_decay},
                                                  {"--opt-betas", beta1},
                                                  {"--opt-betas", beta2},
                                                  {"--warmup-epochs", warmup_epochs},
                                                  {"--label-smoothing", label_smoothing},
                                                  {"--clip-grad", clip_grad},
                                                  {"--patch-drop-tail", patch_drop_tail},
                                                  {"--tail-lr", tail_start_lr()},
                                                  {"--scale", scale_min},
                                                  {"--scale", scale_max},
                                                  {"--ratio", ratio_min},
                                                  {"--ratio", ratio_max},
                                                  {"--hflip", hflip},
                                                  {"--reprob", random_erasing},
                                                  {"--mixup", mixup.mixup_alpha},
                                                  {"--cutmix", mixup.cutmix_alpha},
                                                  {"--mixup-prob", mixup.prob},
                                                  {"--mixup-switch-prob", mixup.switch_prob},
                                                  {"--ema-decay", ema_decay},
                                                  {"--time-limit", time_limit},
                                                  {"--dist-timeout", dist_timeout}};
  for (const auto& [flag, value] : reals) require(std::isfinite(value), flag, "a finite number", str(value));
  require(epochs >= 1, "--epochs", "at least 1", str(epochs));
  require(batch_size >= 1, "--batch-size", "at least 1", str(batch_size));
  require(lr > 0.0, "--lr", "a positive learning rate", str(lr));
  require(min_lr >= 0.0 && min_lr <= lr, "--min-lr", "between 0 and --lr", str(min_lr));
  require(weight_decay >= 0.0, "--weight-decay", ">= 0", str(weight_decay));
  for (const double beta : {beta1, beta2})
    require(beta >= 0.0 && beta < 1.0, "--opt-betas", "two decay rates in [0, 1)", str(beta));
  require(warmup_epochs >= 0.0, "--warmup-epochs", ">= 0", str(warmup_epochs));
  require(label_smoothing >= 0.0 && label_smoothing < 1.0, "--label-smoothing", "a value in [0, 1)",
          str(label_smoothing));
  require(clip_grad >= 0.0, "--clip-grad", ">= 0 (0 = off)", str(clip_grad));
  require(grad_accum >= 1, "--grad-accum", "at least 1", str(grad_accum));
  require(patch_drop_tail >= 0.0 && patch_drop_tail < 1.0, "--patch-drop-tail", "a share of the run in [0, 1)",
          str(patch_drop_tail));
  if (tail_lr && patch_drop_tail == 0.0)
    throw std::invalid_argument("--tail-lr is the learning rate of a --patch-drop-tail, and none is asked for");
  if (patch_drop_tail > 0.0)
    require(tail_start_lr() > 0.0 && tail_start_lr() >= min_lr, "--tail-lr",
            std::string("a positive learning rate, at least --min-lr") + (tail_lr ? "" : " (the default is --lr / 4)"),
            str(tail_start_lr()));
  require(val_split >= 0.0 && val_split < 1.0, "--val-split", "a fraction in [0, 1)", str(val_split));
  require(val_every >= 1, "--val-every", "at least 1 (1 = after every epoch)", str(val_every));
  parse_test_time_augmentation(val_tta, "--val-tta");  // throws naming the option
  require(max_pixels > 0, "--max-pixels", "a positive pixel count", str(max_pixels));
  require(auto_augment == "none" || auto_augment == "trivial" || auto_augment == "rand", "--auto-augment",
          "none, trivial or rand", "'" + auto_augment + "'");
  // RandAugment's 31 magnitude bins, as timm and torchvision (data/auto_augment.h); checked even when the policy
  // is another, so that a slip is caught before a dataset scan rather than when --auto-augment rand is added.
  require(ra_num_ops >= 1, "--ra-num-ops", "at least 1", str(ra_num_ops));
  require(ra_magnitude >= 0 && ra_magnitude <= 30, "--ra-magnitude", "a magnitude from 0 to 30", str(ra_magnitude));
  // The crop and flip ranges are checked again by the data pipeline; here they are named by their options, and
  // refused before the dataset is scanned.
  require(scale_min > 0.0 && scale_min <= scale_max && scale_max <= 1.0, "--scale",
          "MIN MAX, shares of the image's area with 0 < MIN <= MAX <= 1", str(scale_min) + " " + str(scale_max));
  require(ratio_min > 0.0 && ratio_min <= ratio_max, "--ratio", "MIN MAX, aspect ratios with 0 < MIN <= MAX",
          str(ratio_min) + " " + str(ratio_max));
  require(hflip >= 0.0 && hflip <= 1.0, "--hflip", "a probability", str(hflip));
  require(random_erasing >= 0.0 && random_erasing <= 1.0, "--reprob", "a probability", str(random_erasing));
  require(ema_decay > 0.0 && ema_decay < 1.0, "--ema-decay", "a value in (0, 1)", str(ema_decay));
  require(amp == "none" || amp == "bf16", "--amp", "none or bf16", "'" + amp + "'");
  require(device == "cpu" || device == "cuda", "--device", "cpu or cuda", "'" + device + "'");
  require(threads >= 0, "--threads", ">= 0 (0 = one per core)", str(threads));
  require(workers >= 0, "--workers", ">= 0 (0 = automatic)", str(workers));
  require(cache_images_mib >= 0 && cache_images_mib <= kMaxCacheImagesMiB, "--cache-images",
          "MiB from 0 (none) to " + str(kMaxCacheImagesMiB), str(cache_images_mib));
  require(time_limit >= 0.0, "--time-limit", "seconds >= 0 (0 = none)", str(time_limit));
  require(dist_backend == "auto" || dist_backend == "gloo" || dist_backend == "nccl", "--dist-backend",
          "auto, gloo or nccl", "'" + dist_backend + "'");
  require(dist_timeout > 0.0, "--dist-timeout", "seconds > 0", str(dist_timeout));
  if (dist_backend == "nccl" && device != "cuda")
    throw std::invalid_argument("--dist-backend nccl needs --device cuda (NCCL joins GPUs; Gloo joins CPUs)");
  mixup.validate();
}

void apply_overrides(ViTConfig& config, const ArchitectureOverrides& overrides) {
  for_each_override([&](const OverrideInfo&, auto override_member, auto config_member) {
    if (const auto& value = overrides.*override_member) config.*config_member = *value;
  });
  if (overrides.global_pool) {  // timm's default pairing: the norm follows the reducing pools
    const GlobalPool pool = *overrides.global_pool;
    config.fc_norm = pool == GlobalPool::Avg || pool == GlobalPool::Max || pool == GlobalPool::AvgMax;
  }
}

void to_json(nlohmann::json& j, const ArchitectureOverrides& overrides) {
  j = nlohmann::json::object();
  for_each_override([&](const OverrideInfo& info, auto member, auto) { j[info.key] = overrides.*member; });
}

void from_json(const nlohmann::json& j, ArchitectureOverrides& overrides) {
  ArchitectureOverrides out;
  for_each_override([&](const OverrideInfo& info, auto member, auto) {
    if (j.contains(info.key)) j.at(info.key).get_to(out.*member);
  });
  overrides = out;
}

}  // namespace vit::engine
