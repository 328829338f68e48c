#include "app/bench_command.h"

#include <algorithm>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "app/architecture_options.h"
#include "app/cli_checks.h"
#include "app/exit_codes.h"
#include "app/inference_options.h"
#include "engine/all_reduce_bench.h"
#include "engine/benchmark.h"
#include "engine/distributed_env.h"
#include "engine/model_setup.h"
#include "engine/runtime.h"
#ifdef VIT_HAVE_IMAGES
#include "engine/folder_bench.h"
#endif

namespace vit::app {
namespace {

struct BenchCommandOptions {
  engine::BenchOptions bench;
  std::string phases = "both";  // "train" | "inference" | "both"
  std::string format = "text";
};

nlohmann::json to_json(const engine::Throughput& t) {
  return {{"images_per_s", t.median()},
          {"windows_images_per_s", t.images_per_s},
          {"steps_per_window", t.steps_per_window},
          {"peak_memory_bytes", t.peak_memory_bytes},
          {"minor_faults_per_step", t.minor_faults_per_step},
          {"kernel_time_share", t.kernel_time_share},
          {"images_per_cpu_second", t.images_per_cpu_second},
          {"model_gflops", t.model_gflops},
          {"peak_share", t.peak_share}};
}

void print_json(const engine::BenchOptions& o, const engine::BenchReport& r) {
  nlohmann::json out{{"model", o.model},
                     {"config", r.config},
                     {"parameters", r.parameters},
                     {"batch_size", o.batch_size},
                     {"amp", o.amp},
                     {"device", r.device},
                     {"kernels", r.kernels},
                     {"memory", r.memory},
                     {"gemm_peak_gflops", {{"float32", r.peak.float32_gflops}, {"bf16", r.peak.bf16_gflops}}}};
  const std::pair<const char*, const std::optional<engine::Throughput>*> phases[] = {
      {"inference", &r.inference},
      {"train", &r.train},
      {"pipeline", &r.pipeline},
      {"folder_train", &r.folder_train},
      {"synthetic_beside_folder", &r.synthetic_beside_folder}};
  for (const auto& [name, phase] : phases) {
    if (*phase) out[name] = to_json(**phase);
  }
  fmt::print("{}\n", out.dump(2));
}

void print_phase(const char* name, const engine::Throughput& t, const char* precision) {
  const auto [low, high] = std::minmax_element(t.images_per_s.begin(), t.images_per_s.end());
  fmt::print(
      "{:<13}{:>10.1f} images/s  (median of {} windows of {} steps, range {:.1f}-{:.1f}; peak memory {:.0f} MiB; "
      "{:.0f} page faults per step, {:.1f}% of CPU time in the kernel)\n",
      name, t.median(), t.images_per_s.size(), t.steps_per_window, *low, *high,
      static_cast<double>(t.peak_memory_bytes) / (1 << 20), t.minor_faults_per_step, 100.0 * t.kernel_time_share);
  if (t.model_gflops > 0.0) {
    fmt::print("{:<13}{:>10.1f} GFLOP/s of the model's arithmetic, {:.0f}% of the {} GEMM peak\n", "", t.model_gflops,
               100.0 * t.peak_share, precision);
  }
}

void print_text(const engine::BenchOptions& o, const engine::BenchReport& r) {
  const ViTConfig& c = r.config;
  fmt::print("model        {}: {}x{} input, patch {}, width {}, depth {}, {} heads, {:.2f} M parameters\n", o.model,
             c.image_size, c.image_size, c.patch_size, c.embed_dim, c.depth, c.num_heads,
             static_cast<double>(r.parameters) / 1e6);
  fmt::print("run          batch {}, {}, {}\n", o.batch_size, o.amp == "bf16" ? "bf16 autocast" : "float32", r.device);
  fmt::print("kernels      {}\n", r.kernels);
  fmt::print("memory       {}\n", r.memory);
  fmt::print("GEMM peak    {:.0f} GFLOP/s float32, {} bf16 (best 1024x1024x1024 product)\n", r.peak.float32_gflops,
             r.peak.bf16_gflops > 0.0 ? fmt::format("{:.0f} GFLOP/s", r.peak.bf16_gflops) : std::string("no"));
  const char* precision = o.amp == "bf16" ? "bf16" : "float32";
  if (r.inference) print_phase("inference", *r.inference, precision);
  if (r.train) print_phase("train", *r.train, precision);
  if (r.pipeline) {
    print_phase("pipeline", *r.pipeline, precision);
    fmt::print("{:<13}{:>10.1f} images per CPU-second ({} decode thread{}; {})\n", "",
               r.pipeline->images_per_cpu_second, r.workers, r.workers == 1 ? "" : "s", r.image_cache);
  }
  if (r.folder_train && r.synthetic_beside_folder) {
    print_phase("folder train", *r.folder_train, precision);
    print_phase("  synthetic", *r.synthetic_beside_folder, precision);
    fmt::print("folder training runs at {:.2f}x the synthetic-data training throughput (windows alternating)\n",
               r.folder_train->median() / r.synthetic_beside_folder->median());
  }
}

// Launched by torchrun or srun: the gradient averaging of one data-parallel step, between the processes.
int run_all_reduce_bench(const engine::BenchOptions& o, const std::string& format) {
  const engine::DistributedEnv env = engine::read_distributed_env();
  if (env.launcher == "none")
    throw std::invalid_argument(
        "--phases all-reduce times the processes of a launch: run it as torchrun --nproc_per_node 2 --no_python "
        "vit bench --phases all-reduce ... (or with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set)");
  engine::set_threads(o.threads > 0 ? o.threads : engine::threads_per_process(env.local_world_size));
  engine::CollectivesOptions collectives;
  collectives.cuda = o.device == "cuda";
  c10::Device device = engine::select_device(o.device);
  if (device.is_cuda()) device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  const auto group = engine::Collectives::connect(env, collectives);
  const ViTConfig config = engine::preset_config(o.model, o.overrides);
  const engine::AllReduceTiming t = engine::time_gradient_all_reduce(*group, config, o.windows, device);
  if (env.rank != 0) return kExitOk;
  const double megabytes = static_cast<double>(t.floats) * 4.0 / 1e6;
  if (format == "json") {
    fmt::print("{}\n", nlohmann::json{{"model", o.model},
                                      {"backend", t.backend},
                                      {"shared_memory", t.shared_memory},
                                      {"processes", t.world_size},
                                      {"gradient_floats", t.floats},
                                      {"seconds", t.seconds},
                                      {"median_seconds", t.median()}}
                           .dump(2));
    return kExitOk;
  }
  const auto [low, high] = std::minmax_element(t.seconds.begin(), t.seconds.end());
  fmt::print(
      "all-reduce   {}: {:.2f} M gradients ({:.1f} MB float32) averaged over {} between {} processes: "
      "{:.1f} ms per step (median of {}, range {:.1f}-{:.1f}), {:.2f} GB/s\n",
      o.model, static_cast<double>(t.floats) / 1e6, megabytes,
      t.shared_memory ? t.backend + " and shared memory" : t.backend, t.world_size, 1e3 * t.median(), t.seconds.size(),
      1e3 * *low, 1e3 * *high, megabytes / 1e3 / t.median());
  return kExitOk;
}

int run_bench(BenchCommandOptions& options) {
  engine::BenchOptions& o = options.bench;
  if (options.phases == "all-reduce") return run_all_reduce_bench(o, options.format);
  o.train = options.phases != "inference";
  o.inference = options.phases != "train";
  engine::ExtraPhases extra;
#ifdef VIT_HAVE_IMAGES
  if (!o.data_dir.empty()) extra = engine::folder_phases(o);
#endif
  spdlog::info("benchmarking {} (batch {}, {} windows of about {} s each){}", o.model, o.batch_size, o.windows,
               o.window_seconds, o.data_dir.empty() ? "" : " with images from '" + o.data_dir + "'");
  const engine::BenchReport report = engine::run_benchmark(o, extra);
  if (options.format == "json") {
    print_json(o, report);
  } else {
    print_text(o, report);
  }
  return kExitOk;
}

}  // namespace

Command setup_bench(CLI::App& app) {
  auto options = std::make_shared<BenchCommandOptions>();
  engine::BenchOptions& o = options->bench;
  CLI::App* cli = app.add_subcommand("bench", "Measure training and inference throughput on synthetic data");
  add_architecture_options(cli, o.model, o.overrides, "Model");
  cli->add_option_function<int64_t>(
         "--num-classes", [&o](const int64_t& classes) { o.num_classes = classes; },
         "Classes of the head (default: the preset's)")
      ->group("Model");

  const std::string run = "Running";
  cli->add_option("-b,--batch-size", o.batch_size, "Images per step")->capture_default_str()->group(run);
  add_runtime_options(cli, o.device, o.amp, o.threads, o.workers, run);
  cli->add_option("--seed", o.seed, "Random seed (weights and synthetic data)")
      ->check(whole_number_from(0))
      ->capture_default_str()
      ->group(run);

  const std::string measure = "Measuring";
  cli->add_option("--phases", options->phases,
                  "What to time: training steps (forward, backward, AdamW), inference, both, or (under torchrun / "
                  "srun) the gradient all-reduce of a data-parallel step, --windows times")
      ->check(CLI::IsMember({"train", "inference", "both", "all-reduce"}))
      ->capture_default_str()
      ->group(measure);
  cli->add_option("--warmup", o.warmup_steps, "Untimed steps first (the last one sizes the windows)")
      ->capture_default_str()
      ->group(measure);
  cli->add_option("--windows", o.windows, "Timed windows; their median is reported")
      ->capture_default_str()
      ->group(measure);
  cli->add_option("--window-seconds", o.window_seconds, "Approximate length of each window")
      ->capture_default_str()
      ->group(measure);
#ifdef VIT_HAVE_IMAGES
  cli->add_option("--data", o.data_dir,
                  "Also time the data pipeline on this image folder (DIR/<class>/...: decode, random-resized crop, "
                  "flip, batching) and training fed by it")
      ->check(CLI::ExistingDirectory)
      ->group(measure);
  add_cache_option(cli, o.cache_images_mib, measure);
#endif
  cli->add_option("--trace", o.trace_path,
                  "Afterwards, write a Chrome trace (chrome://tracing, ui.perfetto.dev) of one step of each phase to "
                  "this file")
      ->group(measure);
  cli->add_option("--format", options->format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str()
      ->group(measure);
  cli->footer(
      "Peak memory: the process's peak resident memory during each phase on CPU, the peak of GPU memory "
      "allocated on CUDA. bench/compare.sh runs the same model in PyTorch beside it.");
  return {cli, [options] { return run_bench(*options); }};
}

}  // namespace vit::app
