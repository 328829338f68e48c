#include "engine/benchmark.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/normal.h>
#include <ATen/ops/randint.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>

#include <sys/resource.h>

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
#include "models/cpu_attention_bf16.h"
#include "models/cpu_attention_bf16_dot.h"
#include "models/cpu_gemm.h"
#include "models/cpu_vector_width.h"
#include "models/model_cost.h"
#include "util/atomic_file.h"

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

// The process's CPU time (user and kernel, all threads) and minor page faults so far.
struct ResourceUsage {
  double user_s = 0.0;
  double kernel_s = 0.0;
  int64_t minor_faults = 0;

  ResourceUsage operator-(const ResourceUsage& o) const {
    return {user_s - o.user_s, kernel_s - o.kernel_s, minor_faults - o.minor_faults};
  }
  ResourceUsage& operator+=(const ResourceUsage& o) {
    user_s += o.user_s, kernel_s += o.kernel_s, minor_faults += o.minor_faults;
    return *this;
  }

  static ResourceUsage now() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec);
    };
    return {seconds(usage.ru_utime), seconds(usage.ru_stime), static_cast<int64_t>(usage.ru_minflt)};
  }
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

// vit's bf16 attention kernels (cpu_attention_bf16.h) as this CPU runs them.
std::string bf16_attention_kernels(const std::string& lanes) {
  const std::string others = "up to " + std::to_string(kBf16AttentionMaxTokens) + " tokens in one pass (" + lanes +
                             "), longer ones in chunks of images that stay in cache (LibTorch's batched products, " +
                             "vit's softmax)";
  return cpu_attention_bf16_dot_available(32)
             ? "AVX512-BF16 dot products per image and head (heads of whole vectors); other heads " + others
             : others;
}

// Which kernels do the matrix products, as chosen by cpu_gemm.h and LibTorch: the figures mean little without it.
std::string describe_kernels(c10::Device device, bool bf16) {
  if (device.is_cuda()) {
    return std::string("LibTorch's CUDA kernels (cuBLAS, fused attention), ") + (bf16 ? "bf16 autocast" : "float32");
  }
  const std::string lanes = std::to_string(cpu::vector_lanes()) + " float lanes";
  const std::string softmax = "attention's softmax vit's (" + lanes + ")";
  if (bf16) {
    return std::string(cpu::onednn_bf16_native() ? "linear layers on oneDNN's bf16 matmul (the bias added in it), "
                                                   "the rest LibTorch's bf16 kernels"
                                                 : "LibTorch's bf16 kernels (oneDNN)") +
           " under autocast, pre-norm blocks' LayerNorms (bf16 out), GELU and residual adds vit's" +
           (kBf16AttentionKernel ? "; attention vit's: " + bf16_attention_kernels(lanes) : std::string());
  }
  return cpu::onednn_available()
             ? "float32 linear and attention products on oneDNN sgemm, " + softmax + ", GELU vit's; the rest LibTorch"
             : "LibTorch's float32 kernels (BLAS); this build has no oneDNN";
}

}  // namespace

void BenchOptions::validate() const {
  auto positive = [](const char* flag, double value) {
    if (value > 0 && std::isfinite(value)) return;
    std::ostringstream message;
    message << flag << (std::isfinite(value) ? " must be positive, got " : " must be a finite number, got ") << value;
    throw std::invalid_argument(message.str());
  };
  positive("--batch-size", static_cast<double>(batch_size));
  if (num_classes) positive("--num-classes", static_cast<double>(*num_classes));
  positive("--windows", static_cast<double>(windows));
  positive("--window-seconds", window_seconds);
  if (warmup_steps < 1) throw std::invalid_argument("--warmup must be at least 1, got " + std::to_string(warmup_steps));
  if (amp != "none" && amp != "bf16") throw std::invalid_argument("--amp: expected none or bf16, got '" + amp + "'");
  if (cache_images_mib < 0 || cache_images_mib > kMaxCacheImagesMiB) {
    throw std::invalid_argument("--cache-images: expected MiB from 0 (none) to " + std::to_string(kMaxCacheImagesMiB) +
                                ", got " + std::to_string(cache_images_mib));
  }
  if (!train && !inference) throw std::invalid_argument("nothing to measure: both training and inference are off");
}

double Throughput::median() const {
  if (images_per_s.empty()) return 0.0;
  auto sorted = images_per_s;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

BenchModel::BenchModel(const BenchOptions& options) : device_(c10::kCPU), bf16_(options.amp == "bf16") {
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
  if (config_.num_classes == 0 && options.train) {  // timm's feature models (DINOv2, SigLIP, ...) have no head
    throw std::invalid_argument(options.model +
                                " has no classifier head (num_classes 0: its outputs are features), so a training "
                                "step has no loss to time: give --num-classes N for a head of N classes, or "
                                "--phases inference");
  }
  torch::manual_seed(options.seed);
  model_ = VisionTransformer(config_);
  model_->to(device_);
  optimizer_ = std::make_unique<AdamW>(named_parameters(*model_), AdamWOptions{});

  const auto float_options = at::TensorOptions().device(device_).dtype(at::kFloat);
  images_ = at::normal(0.0, 1.0, {options.batch_size, config_.in_chans, config_.image_size, config_.image_size},
                       c10::nullopt, float_options);
  if (options.train) {
    const at::Tensor labels = at::randint(config_.num_classes, {options.batch_size}, float_options.dtype(at::kLong));
    targets_ = smooth_one_hot(labels, config_.num_classes, 0.1);
  }
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

int64_t BenchModel::synthetic_train_step() {
  train_step(images_, targets_);
  return images_.size(0);
}

int64_t BenchModel::synthetic_inference_step() {
  inference_step(images_);
  return images_.size(0);
}

std::vector<Throughput> measure_alternating(const BenchOptions& options, c10::Device device,
                                            const std::vector<BenchStep>& steps,
                                            const std::vector<std::function<void()>>& before_window) {
  PeakMemory memory(device);
  std::vector<Throughput> results(steps.size());
  std::vector<ResourceUsage> usage(steps.size());  // summed over each step's windows
  std::vector<int64_t> images_done(steps.size(), 0);
  for (size_t s = 0; s < steps.size(); ++s) {
    memory.reset();
    for (int64_t i = 0; i + 1 < options.warmup_steps; ++i) steps[s]();
    synchronize(device);
    const auto start = Clock::now();
    steps[s]();
    synchronize(device);
    const double step_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    results[s].steps_per_window =
        std::max<int64_t>(1, std::llround(options.window_seconds / std::max(step_seconds, 1e-9)));
    results[s].peak_memory_bytes = memory.peak_bytes();
  }
  for (int64_t w = 0; w < options.windows; ++w) {
    for (size_t s = 0; s < steps.size(); ++s) {
      if (s < before_window.size() && before_window[s]) before_window[s]();
      memory.reset();
      const ResourceUsage before = ResourceUsage::now();
      int64_t images = 0;
      const auto start = Clock::now();
      for (int64_t i = 0; i < results[s].steps_per_window; ++i) images += steps[s]();
      synchronize(device);
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      results[s].images_per_s.push_back(static_cast<double>(images) / seconds);
      images_done[s] += images;
      usage[s] += ResourceUsage::now() - before;
      results[s].peak_memory_bytes = std::max(results[s].peak_memory_bytes, memory.peak_bytes());
    }
  }
  for (size_t s = 0; s < steps.size(); ++s) {
    results[s].minor_faults_per_step =
        static_cast<double>(usage[s].minor_faults) / static_cast<double>(options.windows * results[s].steps_per_window);
    const double cpu_seconds = usage[s].user_s + usage[s].kernel_s;
    results[s].kernel_time_share = cpu_seconds > 0.0 ? usage[s].kernel_s / cpu_seconds : 0.0;
    results[s].images_per_cpu_second = cpu_seconds > 0.0 ? static_cast<double>(images_done[s]) / cpu_seconds : 0.0;
  }
  return results;
}

Throughput measure_throughput(const BenchOptions& options, c10::Device device, const BenchStep& step) {
  return measure_alternating(options, device, {step}).front();
}

GemmPeak measure_gemm_peak(c10::Device device) {
  constexpr int64_t n = 1024;
  const double flops = 2.0 * n * n * n;
  // The best of as many products as fit in a quarter of a second, after one untimed.
  auto best_gflops = [&](const std::function<void()>& product) {
    product();
    synchronize(device);
    double best = 0.0;
    const auto start = Clock::now();
    while (Clock::now() - start < std::chrono::milliseconds(250)) {
      const auto t0 = Clock::now();
      product();
      synchronize(device);
      best = std::max(best, flops / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9);
    }
    return best;
  };
  GemmPeak peak;
  const auto options = at::TensorOptions().device(device);
  const at::Tensor a = at::normal(0.0, 1.0, {n, n}, c10::nullopt, options);
  const at::Tensor b = at::normal(0.0, 1.0, {n, n}, c10::nullopt, options);
  peak.float32_gflops = best_gflops([&] { at::mm(a, b); });
  if (device.is_cpu() && cpu::onednn_available()) {
    at::Tensor c = at::empty({n, n}, options);
    peak.float32_gflops = std::max(peak.float32_gflops, best_gflops([&] {
                                     cpu::sgemm(false, false, n, n, n, 1.0f, a.data_ptr<float>(), n,
                                                b.data_ptr<float>(), n, 0.0f, c.data_ptr<float>(), n);
                                   }));
  }
  try {
    const at::Tensor a16 = a.to(at::kBFloat16), b16 = b.to(at::kBFloat16);
    peak.bf16_gflops = best_gflops([&] { at::mm(a16, b16); });
  } catch (const c10::Error&) {
    peak.bf16_gflops = 0.0;  // no bf16 products on this device
  }
  return peak;
}

BenchReport run_benchmark(const BenchOptions& options, const ExtraPhases& extra) {
  BenchModel model(options);
  BenchReport report;
  report.config = model.config();
  report.parameters = count_parameters(model.config());
  report.device = describe_device(model.device());
  report.kernels = describe_kernels(model.device(), options.amp == "bf16");
  report.memory = configure_memory_reuse();
  report.peak = measure_gemm_peak(model.device());

  if (options.inference) {
    report.inference = measure_throughput(options, model.device(), [&] { return model.synthetic_inference_step(); });
  }
  if (options.train) {
    report.train = measure_throughput(options, model.device(), [&] { return model.synthetic_train_step(); });
  }
  if (extra) extra(model, report);

  const double peak = options.amp == "bf16" ? report.peak.bf16_gflops : report.peak.float32_gflops;
  auto rate = [&](std::optional<Throughput>& phase, double flops_per_image) {
    if (!phase) return;
    phase->model_gflops = phase->median() * flops_per_image / 1e9;
    phase->peak_share = peak > 0.0 ? phase->model_gflops / peak : 0.0;
  };
  const double inference_flops = 2.0 * count_macs(model.config());
  const double train_flops = 3.0 * 2.0 * count_training_macs(model.config());
  rate(report.inference, inference_flops);
  rate(report.train, train_flops);
  rate(report.folder_train, train_flops);
  rate(report.synthetic_beside_folder, train_flops);
  if (!options.trace_path.empty()) {
    // One step of each phase, op by op with its inputs' shapes: where the time of a step goes. The profiler's
    // first session allocates its records between the step's tensors, which then cannot reuse the memory they
    // freed: the traced step took fresh pages, and their first-touch faults inflated whichever kernel wrote them
    // first (attention's backward 4-7x, its gradient's 13 MB at batch 256). So a first profiled step is thrown
    // away; the second runs on reused memory, as the timed windows do.
    const auto profiled_steps = [&](std::ostream& out) {
      torch::autograd::profiler::RecordProfile profile(out);
      if (options.inference) model.synthetic_inference_step();
      if (options.train) model.synthetic_train_step();
      synchronize(model.device());
    };
    std::ostringstream discarded;
    profiled_steps(discarded);
    std::ostringstream trace;
    profiled_steps(trace);
    write_file_atomically(options.trace_path, [&](std::ostream& out) { out << trace.str(); });
  }
  return report;
}

}  // namespace vit::engine
