// Writes the seed corpora of the parsers whose inputs vit itself writes (weights files, checkpoint folders,
// model descriptions, metrics.csv, resume states), with the library's own writers and the small models of
// small_checkpoints.h. The image and IDX seeds come from make_image_seeds.py. The output is committed as
// tests/fuzz/corpus. usage: make_fuzz_seeds CORPUS_DIR
#include <iostream>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <nlohmann/json.hpp>

#include "engine/run_state.h"
#include "models/hf_checkpoint.h"
#include "models/safetensors.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/small_checkpoints.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using vit::fuzz::kPartSeparator;
using vit::test::read_bytes;

namespace {

void write_seed(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  vit::test::write_bytes(dir / name, bytes);
}

// A safetensors file's bytes, written by write_safetensors.
std::string safetensors_bytes(const fs::path& scratch, const vit::TensorMap& tensors, const vit::Metadata& metadata) {
  const auto path = scratch / "seed.safetensors";
  vit::write_safetensors(path, tensors, metadata);
  return read_bytes(path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_fuzz_seeds CORPUS_DIR\n";
    return 2;
  }
  const fs::path corpus = argv[1];
  const fs::path scratch = vit::fuzz::scratch_dir();
  const auto models = vit::fuzz::small_models();

  // safetensors: every dtype, a scalar, an empty tensor, metadata only; and vit weights files.
  write_seed(corpus / "safetensors", "dtypes.safetensors",
             safetensors_bytes(scratch,
                               {{"f32", at::ones({2, 3})},
                                {"f16", at::ones({4}, at::kHalf)},
                                {"bf16", at::ones({1, 2}, at::kBFloat16)},
                                {"f64", at::ones({}, at::kDouble)},
                                {"i64", at::arange(5)},
                                {"i8", at::zeros({3}, at::kChar)},
                                {"u8", at::zeros({2, 2}, at::kByte)},
                                {"bool", at::ones({2}, at::kBool)},
                                {"empty", at::zeros({0, 4})}},
                               {{"format", "pt"}}));
  write_seed(corpus / "safetensors", "metadata_only.safetensors", safetensors_bytes(scratch, {}, {{"a", "b"}}));

  for (size_t i = 0; i < models.size(); ++i) {
    const auto& model = models[i];
    const std::string n = std::to_string(i);
    const auto tensors = vit::fuzz::tensors_of(model.config);
    const std::string description = vit::metadata_to_json(model);
    const std::string weights = safetensors_bytes(scratch, tensors, {{"vit", description}});
    write_seed(corpus / "safetensors", "vit_weights_" + n + ".safetensors", weights);
    write_seed(corpus / "weights_metadata", "model_" + n + ".json", description);

    const nlohmann::json timm = vit::timm_config(model);
    write_seed(corpus / "timm_config", "config_" + n + ".json", std::string(1, static_cast<char>(i)) + timm.dump(2));
    const std::string timm_weights = safetensors_bytes(scratch, tensors, {});
    write_seed(corpus / "checkpoint_info", "vit_" + n, weights + kPartSeparator + kPartSeparator);
    write_seed(corpus / "checkpoint_info", "timm_" + n, timm_weights + kPartSeparator + timm.dump(2) + kPartSeparator);
  }
  write_seed(corpus / "timm_config", "architecture_only.json",
             std::string(1, '\0') + R"({"architecture": "vit_tiny_patch16_224", "num_classes": 3})");

  const auto hf_model = vit::fuzz::token_model();
  const std::string hf_config = vit::hf_config(hf_model).dump(2);
  const std::string hf_preprocessor = vit::hf_preprocessor_config(hf_model).dump(2);
  write_seed(corpus / "hf_config", "vit.json", hf_config + kPartSeparator + hf_preprocessor);
  write_seed(corpus / "hf_config", "vit_without_preprocessor.json", hf_config);
  const auto hf_tensors = vit::timm_to_hf(vit::fuzz::tensors_of(hf_model.config), hf_model.config);
  write_seed(corpus / "checkpoint_info", "hf",
             safetensors_bytes(scratch, hf_tensors, {{"format", "pt"}}) + kPartSeparator + hf_config + kPartSeparator +
                 hf_preprocessor);

  // metrics.csv: a run with validation, one without (empty cells), and a run with no epochs yet.
  std::vector<vit::engine::MetricsRow> rows(3);
  for (int64_t e = 0; e < 3; ++e) {
    auto& r = rows[static_cast<size_t>(e)];
    r.epoch = e + 1;
    r.train_loss = 2.0 / (e + 1);
    r.train_acc = 0.3 + 0.1 * e;
    r.val_loss = 1.9 / (e + 1);
    r.val_top1 = 0.25 * e;
    r.val_top5 = 0.9;
    r.lr = 1e-3;
    r.images_per_s = 1234.5;
    r.seconds = 10.25 * (e + 1);
  }
  const auto csv = scratch / "metrics.csv";
  vit::engine::write_metrics_csv(csv, rows);
  write_seed(corpus / "metrics_csv", "with_validation.csv", read_bytes(csv));
  for (auto& r : rows) r.val_loss = r.val_top1 = r.val_top5 = vit::engine::kNoValue;
  vit::engine::write_metrics_csv(csv, rows);
  write_seed(corpus / "metrics_csv", "without_validation.csv", read_bytes(csv));
  vit::engine::write_metrics_csv(csv, {});
  write_seed(corpus / "metrics_csv", "no_epochs.csv", read_bytes(csv));

  // resume.safetensors: a run interrupted in its second epoch, with EMA weights and optimizer moments (of the
  // model's small tensors only: the loader does not match them to the model, and a small seed fuzzes faster).
  vit::engine::RunState state;
  state.metadata = models[0];
  for (const auto& [name, tensor] : vit::fuzz::tensors_of(models[0].config))
    if (tensor.numel() <= 64) state.model.emplace(name, tensor);
  state.ema = state.model;
  for (const auto& [name, tensor] : state.model) {
    state.optimizer.emplace("exp_avg." + name, at::zeros_like(tensor));
    state.optimizer.emplace("exp_avg_sq." + name, at::ones_like(tensor));
  }
  state.rng_state = at::detail::getDefaultCPUGenerator().get_state();
  state.progress.epoch = 1;
  state.progress.next_batch = 3;
  state.progress.step = 7;
  state.progress.epochs_target = 3;
  state.progress.total_steps = 12;
  state.progress.lr = 1e-3;
  state.progress.best_top1 = 0.5;
  state.progress.best_epoch = 1;
  state.progress.current = {4.5, 3, 8, 0.25};
  state.progress.history = {rows[0]};
  const auto resume = scratch / "resume.safetensors";
  vit::engine::save_run_state(resume, state);
  write_seed(corpus / "resume_state", "interrupted.safetensors", read_bytes(resume));
  std::cout << "seeds written to " << corpus.string() << "\n";
  return 0;
}
