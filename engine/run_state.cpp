#include "engine/run_state.h"

#include <ATen/CPUGeneratorImpl.h>

#include <array>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "util/atomic_file.h"
#include "util/text.h"

namespace vit::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// NaN is not JSON: missing values travel as null.
json number_or_null(double value) { return std::isnan(value) ? json(nullptr) : json(value); }
double number_or_nan(const json& j) { return j.is_null() ? kNoValue : j.get<double>(); }

void put_prefixed(TensorMap& out, const std::string& prefix, const TensorMap& tensors) {
  for (const auto& [name, tensor] : tensors) out.emplace(prefix + name, tensor);
}

TensorMap take_prefixed(const TensorMap& tensors, const std::string& prefix) {
  TensorMap out;
  for (const auto& [name, tensor] : tensors) {
    if (name.rfind(prefix, 0) == 0) out.emplace(name.substr(prefix.size()), tensor);
  }
  return out;
}

// The header row of metrics.csv, which write_metrics_csv writes and read_metrics_csv expects.
constexpr const char* kMetricsHeader =
    "epoch,train_loss,train_acc,val_loss,val_top1,val_top5,ema_val_top1,ema_val_top5,lr,images_per_s,seconds";

// The columns after `epoch`, in file order (pointers to const for a const row).
template <typename Row>
auto metric_fields(Row& r) {
  return std::array{&r.train_loss,   &r.train_acc,    &r.val_loss, &r.val_top1,     &r.val_top5,
                    &r.ema_val_top1, &r.ema_val_top5, &r.lr,       &r.images_per_s, &r.seconds};
}

// An empty metrics cell is a figure the run does not have; any other must be a whole, finite number.
double parse_cell(const std::string& text) {
  if (text.empty()) return kNoValue;
  const auto value = parse_finite_number(text);
  if (!value) throw std::invalid_argument("'" + text + "' is not a number");
  return *value;
}

// The size of LibTorch's CPU generator state, which Generator::set_state insists on.
int64_t cpu_generator_state_bytes() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state().numel();
}

// A saved progress that no run writes (a damaged or hand-edited state): refused before the trainer trusts its counts
// as loop bounds, batch positions and divisors.
void check_progress(const RunProgress& p) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("progress: " + what);
  };
  require(p.epochs_target >= 1, "epochs_target " + std::to_string(p.epochs_target) + " is not at least 1");
  require(p.epoch >= 0 && p.epoch <= p.epochs_target,
          "epoch " + std::to_string(p.epoch) + " is outside 0.." + std::to_string(p.epochs_target));
  require(p.next_batch >= 0, "next_batch " + std::to_string(p.next_batch) + " is negative");
  require(p.step >= 0 && p.total_steps >= 0, "step / total_steps are negative");
  require(p.world_size >= 1, "world_size " + std::to_string(p.world_size) + " is not at least 1");
  require(p.best_epoch >= 0 && p.best_epoch <= p.epoch,
          "best_epoch " + std::to_string(p.best_epoch) + " is outside 0.." + std::to_string(p.epoch));
  require(p.current.seen >= 0 && p.current.correct >= 0 && p.current.correct <= p.current.seen,
          "the epoch's totals count " + std::to_string(p.current.correct) + " correct of " +
              std::to_string(p.current.seen) + " seen");
  require(p.tail_start_step <= p.step,
          "tail_start_step " + std::to_string(p.tail_start_step) + " is after step " + std::to_string(p.step));
  for (const double value : {p.lr, p.warmup_end_s, p.decay_time, p.longest_epoch_end_s, p.tail_start_s,
                             p.last_epoch_train_s, p.best_top1, p.best_top5, p.elapsed_s, p.current.seconds})
    require(std::isfinite(value), "a time, rate or total is not a finite number");
  require(p.elapsed_s >= 0.0 && p.decay_time >= 0.0 && p.decay_time <= 1.0, "elapsed_s or decay_time out of range");
  for (const auto& row : p.history)
    require(row.epoch >= 1 && row.epoch <= p.epoch + 1, "history row of epoch " + std::to_string(row.epoch));
}

}  // namespace

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(EpochTotals, loss_sum, correct, seen, seconds)

void to_json(json& j, const MetricsRow& r) {
  j = json{{"epoch", r.epoch},
           {"train_loss", number_or_null(r.train_loss)},
           {"train_acc", number_or_null(r.train_acc)},
           {"val_loss", number_or_null(r.val_loss)},
           {"val_top1", number_or_null(r.val_top1)},
           {"val_top5", number_or_null(r.val_top5)},
           {"ema_val_top1", number_or_null(r.ema_val_top1)},
           {"ema_val_top5", number_or_null(r.ema_val_top5)},
           {"lr", number_or_null(r.lr)},
           {"images_per_s", number_or_null(r.images_per_s)},
           {"seconds", number_or_null(r.seconds)}};
}

void from_json(const json& j, MetricsRow& r) {
  r.epoch = j.at("epoch").get<int64_t>();
  r.train_loss = number_or_nan(j.at("train_loss"));
  r.train_acc = number_or_nan(j.at("train_acc"));
  r.val_loss = number_or_nan(j.at("val_loss"));
  r.val_top1 = number_or_nan(j.at("val_top1"));
  r.val_top5 = number_or_nan(j.at("val_top5"));
  r.ema_val_top1 = number_or_nan(j.at("ema_val_top1"));
  r.ema_val_top5 = number_or_nan(j.at("ema_val_top5"));
  r.lr = number_or_nan(j.at("lr"));
  r.images_per_s = number_or_nan(j.at("images_per_s"));
  r.seconds = number_or_nan(j.at("seconds"));
}

// Fields missing from a state saved by an earlier version take their defaults.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RunProgress, epoch, next_batch, step, epochs_target, total_steps, lr,
                                                warmup_end_s, decay_time, longest_epoch_end_s, tail_start_step,
                                                tail_start_s, last_epoch_train_s, best_top1, best_top5, best_epoch,
                                                elapsed_s, world_size, current, history)

fs::path resume_path(const fs::path& run_dir) { return run_dir / "resume.safetensors"; }

void save_run_state(const fs::path& path, const RunState& state) {
  TensorMap tensors;
  put_prefixed(tensors, "model.", state.model);
  put_prefixed(tensors, "ema.", state.ema);
  put_prefixed(tensors, "optimizer.", state.optimizer);
  tensors.emplace("rng.cpu", state.rng_state);
  const Metadata metadata{{"format", "vit-toolkit-resume"},
                          {"options", json(state.options).dump()},
                          {"model", json{{"config", state.metadata.config},
                                         {"preprocess", state.metadata.preprocess},
                                         {"class_names", state.metadata.class_names}}
                                        .dump()},
                          {"progress", json(state.progress).dump()}};
  write_safetensors(path, tensors, metadata);
}

RunState load_run_state(const fs::path& path) {
  auto content = read_safetensors(path);
  auto fail = [&](const std::string& problem) -> void {
    throw std::runtime_error("'" + path.string() + "': " + problem);
  };
  auto format = content.metadata.find("format");
  if (format == content.metadata.end() || format->second != "vit-toolkit-resume") fail("not a vit resume state");
  RunState state;
  try {
    state.options = json::parse(content.metadata.at("options")).get<TrainOptions>();
    const json model = json::parse(content.metadata.at("model"));
    state.metadata.config = model.at("config").get<ViTConfig>();
    state.metadata.preprocess = model.at("preprocess").get<PreprocessConfig>();
    state.metadata.class_names = model.at("class_names").get<std::vector<std::string>>();
    state.progress = json::parse(content.metadata.at("progress")).get<RunProgress>();
    // What the run checked when it started holds for what it saved; anything else was damaged since.
    state.options.validate();
    state.metadata.validate();
    check_progress(state.progress);
  } catch (const std::exception& e) {
    fail(std::string("damaged resume metadata: ") + e.what());
  }
  state.model = take_prefixed(content.tensors, "model.");
  state.ema = take_prefixed(content.tensors, "ema.");
  state.optimizer = take_prefixed(content.tensors, "optimizer.");
  auto rng = content.tensors.find("rng.cpu");
  if (rng == content.tensors.end()) fail("resume state lacks the random generator state 'rng.cpu'");
  const auto expected = cpu_generator_state_bytes();
  if (rng->second.scalar_type() != at::kByte || rng->second.dim() != 1 || rng->second.numel() != expected)
    fail("the random generator state 'rng.cpu' is not " + std::to_string(expected) + " bytes (uint8)");
  state.rng_state = rng->second;
  return state;
}

void write_metrics_csv(const fs::path& path, const std::vector<MetricsRow>& rows) {
  // A figure the run does not have is an empty cell; so is a diverged one (inf, NaN), which no chart can draw.
  auto cell = [](std::ostream& out, double value) {
    out << ',';
    if (std::isfinite(value)) out << value;
  };
  write_file_atomically(path, [&](std::ostream& out) {
    out << kMetricsHeader << '\n';
    out << std::setprecision(6);
    for (const auto& r : rows) {
      out << r.epoch;
      for (const double* v : metric_fields(r)) cell(out, *v);
      out << '\n';
    }
  });
}

std::vector<MetricsRow> read_metrics_csv(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("'" + path.string() + "' cannot be read: is it a run folder of vit train?");
  std::string line;
  if (!std::getline(in, line) || line != kMetricsHeader)
    throw std::invalid_argument("'" + path.string() + "' does not start with vit train's metrics header");
  std::vector<MetricsRow> rows;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    std::vector<std::string> cells;
    std::stringstream columns(line);
    for (std::string cell; std::getline(columns, cell, ',');) cells.push_back(cell);
    if (line.back() == ',') cells.emplace_back();  // getline drops an empty last cell
    try {
      if (cells.size() != 11) throw std::invalid_argument("11 columns expected");
      MetricsRow r;
      const auto epoch = parse_integer(cells[0]);
      if (!epoch || *epoch < 1) throw std::invalid_argument("epoch '" + cells[0] + "' is not a positive integer");
      r.epoch = *epoch;
      const auto fields = metric_fields(r);
      for (size_t i = 0; i < fields.size(); ++i) *fields[i] = parse_cell(cells[i + 1]);
      rows.push_back(r);
    } catch (const std::exception& e) {
      throw std::invalid_argument("'" + path.string() + "' line " + std::to_string(number) + ": not a metrics row (" +
                                  e.what() + "): " + line);
    }
  }
  return rows;
}

}  // namespace vit::engine
