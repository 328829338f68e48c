#include "engine/benchmark.h"

#include <ATen/ops/normal.h>
#include <ATen/ops/randint.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>

#ifdef VIT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#endif

#include "engine/autocast.h"
#include "engine/mixup.h"
#include "engine/model_setup.h"
#include "engine/optimizer.h"
#include "engine/runtime.h"
#include "engine/train_step.h"
#include "models/atomic_file.h"
#include "models/cpu_gemm.h"
#include "models/model_info.h"

namespace vit::engine {
namespace {

using Clock = std::chrono::steady_clock;

// Peak memory of one phase. On CPU: the kernel's high-water mark of resident memory, reset by writing 5 to
// /proc/self/clear_refs (Linux >= 4.0), so each phase reports its own peak. On CUDA: the caching allocator's
// peak of allocated bytes, what torch.cuda.max_memory_allocated() reports in Python.
class PeakMemory {
 public:
  explicit PeakMemory(c10::Device device) : device_(device) {}

  void reset() const {
#ifdef VIT_WITH_CUDA
    if (device_.is_cuda()) {
      c10::cuda::CUDACachingAllocator::resetPeakStats(c10::cuda::current_device());
      return;
    }
#endif
    std::ofstream("/proc/self/clear_refs") << "5";
  }

  int64_t peak_bytes() const {
#ifdef VIT_WITH_CUDA
    if (device_.is_cuda()) {
      // Element 0 is the aggregate over the small and large pools (StatType::AGGREGATE in every version).
      return c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device()).allocated_bytes[0].peak;
    }
#endif
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:  123456 kB"
    }
    return 0;
  }

 private:
  c10::Device device_;
};

void synchronize(c10::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

std::string describe_device(c10::Device device) {
#ifdef VIT_WITH_CUDA
  if (device.is_cuda()) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, c10::cuda::current_device()) == cudaSuccess)
      return std::string("cuda (") + properties.name + ")";
    return "cuda";
  }
#endif
  if (device.is_cuda()) return "cuda";
  const int threads = at::get_num_threads();
  return "cpu (" + std::to_string(threads) + (threads == 1 ? " thread)" : " threads)");
}

// Which kernels do the matrix products, as chosen by cpu_gemm.h and LibTorch: the figures mean little without it.
std::string describe_kernels(c10::Device device, bool bf16) {
  if (device.is_cuda()) {
    return std::string("LibTorch's CUDA kernels (cuBLAS, fused attention), ") + (bf16 ? "bf16 autocast" : "float32");
  }
  if (bf16) return "LibTorch's bf16 kernels (oneDNN) under autocast";
  return cpu::onednn_available() ? "float32 linear and attention products on oneDNN sgemm; the rest LibTorch"
                                 : "LibTorch's float32 kernels (BLAS); this build has no oneDNN";
}

}  // namespace

void BenchOptions::validate() const {
  auto positive = [](const char* flag, double value) {
    if (value > 0) return;
    std::ostringstream message;
    message << flag << " must be positive, got " << value;
    throw std::invalid_argument(message.str());
  };
  positive("--batch-size", static_cast<double>(batch_size));
  if (num_classes) positive("--num-classes", static_cast<double>(*num_classes));
  positive("--windows", static_cast<double>(windows));
  positive("--window-seconds", window_seconds);
  if (warmup_steps < 1) throw std::invalid_argument("--warmup must be at least 1, got " + std::to_string(warmup_steps));
  if (amp != "none" && amp != "bf16") throw std::invalid_argument("--amp: expected none or bf16, got '" + amp + "'");
  if (!train && !inference) throw std::invalid_argument("nothing to measure: both training and inference are off");
}

double Throughput::median() const {
  if (images_per_s.empty()) return 0.0;
  auto sorted = images_per_s;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

BenchModel::BenchModel(const BenchOptions& options)
    : device_(c10::kCPU), bf16_(options.amp == "bf16") {
  options.validate();
  set_threads(options.threads);
  device_ = select_device(options.device);
  config_ = preset_config(options.model, options.overrides);
  if (options.num_classes) config_.num_classes = *options.num_classes;
  try {
    config_.validate();
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("model options: ") + e.what());
  }
  torch::manual_seed(options.seed);
  model_ = VisionTransformer(config_);
  model_->to(device_);
  optimizer_ = std::make_unique<AdamW>(named_parameters(*model_), AdamWOptions{});
}

void BenchModel::train_step(const at::Tensor& images, const at::Tensor& targets) {
  model_->train();
  forward_backward(model_, images, targets, bf16_);
  optimizer_->step(1e-4);
  optimizer_->zero_grad();
}

void BenchModel::inference_step(const at::Tensor& images) {
  model_->eval();
  c10::InferenceMode no_autograd;
  AutocastGuard autocast(device_.type(), bf16_);
  model_->forward(images);
}

Throughput measure_throughput(const BenchOptions& options, c10::Device device, const std::function<int64_t()>& step) {
  PeakMemory memory(device);
  memory.reset();
  for (int64_t i = 0; i + 1 < options.warmup_steps; ++i) step();
  synchronize(device);
  auto start = Clock::now();
  step();
  synchronize(device);
  const double step_seconds = std::chrono::duration<double>(Clock::now() - start).count();

  Throughput result;
  result.steps_per_window = std::max<int64_t>(1, std::llround(options.window_seconds / std::max(step_seconds, 1e-9)));
  for (int64_t w = 0; w < options.windows; ++w) {
    int64_t images = 0;
    start = Clock::now();
    for (int64_t i = 0; i < result.steps_per_window; ++i) images += step();
    synchronize(device);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    result.images_per_s.push_back(static_cast<double>(images) / seconds);
  }
  result.peak_memory_bytes = memory.peak_bytes();
  return result;
}

BenchReport run_benchmark(const BenchOptions& options, const ExtraPhases& extra) {
  BenchModel model(options);
  BenchReport report;
  report.config = model.config();
  report.parameters = count_parameters(model.config());
  report.device = describe_device(model.device());
  report.kernels = describe_kernels(model.device(), options.amp == "bf16");

  const ViTConfig& c = model.config();
  const auto float_options = at::TensorOptions().device(model.device()).dtype(at::kFloat);
  const at::Tensor images = at::normal(0.0, 1.0, {options.batch_size, c.in_chans, c.image_size, c.image_size},
                                       c10::nullopt, float_options);
  const at::Tensor labels = at::randint(c.num_classes, {options.batch_size}, float_options.dtype(at::kLong));
  const at::Tensor targets = smooth_one_hot(labels, c.num_classes, 0.1);
  const int64_t batch = options.batch_size;

  if (options.inference) {
    report.inference = measure_throughput(options, model.device(), [&] {
      model.inference_step(images);
      return batch;
    });
  }
  if (options.train) {
    report.train = measure_throughput(options, model.device(), [&] {
      model.train_step(images, targets);
      return batch;
    });
  }
  if (extra) extra(model, report);
  if (!options.trace_path.empty()) {
    // One step of each phase, op by op with its inputs' shapes: where the time of a step goes.
    std::ostringstream trace;
    {
      torch::autograd::profiler::RecordProfile profile(trace);
      if (options.inference) model.inference_step(images);
      if (options.train) model.train_step(images, targets);
      synchronize(model.device());
    }
    write_file_atomically(options.trace_path, [&](std::ostream& out) { out << trace.str(); });
  }
  return report;
}

}  // namespace vit::engine
