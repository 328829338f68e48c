#pragma once
// `vit bench` without the command line: training-step and inference throughput of a model on synthetic data,
// measured the way bench/compare.sh measures PyTorch (bench/torchvision_bench.py), so the two can be set side
// by side.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "engine/optimizer.h"
#include "engine/train_options.h"
#include "models/vision_transformer.h"

namespace vit::engine {

struct BenchOptions {
  std::string model = "vit_tiny_patch16_224";  // preset
  ArchitectureOverrides overrides;             // as `vit train`'s
  std::optional<int64_t> num_classes;          // default: the preset's
  int64_t batch_size = 64;
  std::string device = "cpu";   // "cpu" | "cuda"
  std::string amp = "none";     // "none" | "bf16"
  int threads = 0;              // LibTorch intra-op threads; 0 = one per core
  bool train = true;            // time training steps (forward + backward + AdamW)
  bool inference = true;        // time forward passes without autograd
  int64_t warmup_steps = 3;     // untimed; the last one also sizes the windows
  int64_t windows = 5;          // timed windows; the median is reported
  double window_seconds = 2.0;  // each window runs as many steps as fit in about this long
  uint64_t seed = 0;
  std::string data_dir;             // image folder for the pipeline phases (`vit bench --data`); empty = none
  int workers = 0;                  // decode threads for those; 0 = chosen from the core count
  int64_t cache_images_mib = 2048;  // decoded images kept between epochs there, as `vit train --cache-images`
  std::string trace_path;           // write a Chrome trace of one inference and one training step here; empty = none

  void validate() const;  // std::invalid_argument naming the option
};

struct Throughput {
  int64_t steps_per_window = 0;
  std::vector<double> images_per_s;  // one per window, in the order measured
  int64_t peak_memory_bytes = 0;     // CPU: the process's peak resident set; CUDA: peak bytes allocated on the GPU
  // Over the timed windows, from getrusage (all threads): page faults served without I/O per step, and the
  // share of the process's CPU time spent in the kernel. Both near zero when memory is reused.
  double minor_faults_per_step = 0.0;
  double kernel_time_share = 0.0;
  double images_per_cpu_second = 0.0;  // images over the CPU time of all threads: throughput per busy core
  // The model's matrix arithmetic done per second at the median throughput (count_macs / count_training_macs:
  // 2 FLOPs per multiply-accumulate, 3 passes for a training step), and its share of the GEMM peak of the
  // precision the phase runs in; 0 for phases without a model.
  double model_gflops = 0.0;
  double peak_share = 0.0;
  double median() const;
};

// The device's matrix-product peak as this build reaches it: the best of repeated 1024 x 1024 x 1024 products,
// float32 (LibTorch's BLAS, and oneDNN's sgemm where vit uses it) and bfloat16 (LibTorch's, oneDNN on CPU).
struct GemmPeak {
  double float32_gflops = 0.0;
  double bf16_gflops = 0.0;  // 0 where bf16 products are not available
};
GemmPeak measure_gemm_peak(c10::Device device);

struct BenchReport {
  ViTConfig config;
  int64_t parameters = 0;
  std::string device;   // "cpu (2 threads)", "cuda (NVIDIA H200)"
  std::string kernels;  // what runs the matrix products, e.g. "float32 products on oneDNN sgemm, ..."
  std::string memory;   // how freed memory is handled (runtime.h's configure_memory_reuse)
  GemmPeak peak;
  std::optional<Throughput> inference;
  std::optional<Throughput> train;
  std::optional<Throughput> pipeline;  // --data: decoding and augmenting the folder's images, no model
  int workers = 0;                     // --data: the pipeline's decode threads
  std::string image_cache;             // --data: what the image cache held, e.g. "60000 of 60000 images cached, 45 MiB"
  std::optional<Throughput> folder_train;  // --data: training steps fed by that pipeline
  // --data: synthetic-data training steps timed in windows alternating with folder_train's, so that the ratio of
  // the two is not moved by the machine's load changing between phases.
  std::optional<Throughput> synthetic_beside_folder;
};

// The model under test, on its device, with the optimizer a training run would use and a synthetic batch.
class BenchModel {
 public:
  explicit BenchModel(const BenchOptions& options);  // sets the threads; throws std::invalid_argument
  const ViTConfig& config() const { return config_; }
  c10::Device device() const { return device_; }

  void train_step(const at::Tensor& images, const at::Tensor& targets);  // targets: (B, num_classes)
  void inference_step(const at::Tensor& images);
  // The same on the synthetic batch (random images, random labels smoothed by 0.1); they return its size.
  int64_t synthetic_train_step();
  int64_t synthetic_inference_step();

 private:
  ViTConfig config_;
  c10::Device device_;
  bool bf16_;
  VisionTransformer model_{nullptr};
  std::unique_ptr<AdamW> optimizer_;
  at::Tensor images_;   // (B, C, H, W)
  at::Tensor targets_;  // (B, num_classes)
};

// A step to time: runs once and returns the images it processed.
using BenchStep = std::function<int64_t()>;

// Runs each step's warm-up (the last warm-up step sizes its windows), then the steps' timed windows in turn
// (A B A B ...), so that a change in the machine's load falls on all of them alike. The device is synchronised
// only at window edges, so queued GPU work overlaps the host's as in real training. `before_window`, where given
// for a step, runs untimed before each of its windows. One Throughput per step.
std::vector<Throughput> measure_alternating(const BenchOptions& options, c10::Device device,
                                            const std::vector<BenchStep>& steps,
                                            const std::vector<std::function<void()>>& before_window = {});
Throughput measure_throughput(const BenchOptions& options, c10::Device device, const BenchStep& step);

// Further phases on the same model, timed after the synthetic ones (the image-folder phases of `vit bench
// --data`, which need the image pipeline).
using ExtraPhases = std::function<void(BenchModel& model, BenchReport& report)>;

// Builds the model on the device and times the phases asked for: inference, then training, then `extra`.
// Throws std::invalid_argument for unusable options.
BenchReport run_benchmark(const BenchOptions& options, const ExtraPhases& extra = {});

}  // namespace vit::engine
