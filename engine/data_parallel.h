#pragma once
// Data parallelism over Collectives: the part of PyTorch's DistributedDataParallel a training loop needs, done
// explicitly because LibTorch has c10d but no C++ DDP. Every rank holds a full replica; they start equal (rank 0's
// weights broadcast) and stay equal because every rank applies the same averaged gradient.

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include "engine/collectives.h"

namespace vit::engine {

// Rank 0's parameters and buffers into every rank's `module`.
void broadcast_module(Collectives& group, torch::nn::Module& module);

// Averages the gradients of `parameters` over the ranks, in flat buckets of about `bucket_bytes` (all sent before
// any is waited on, as DDP's buckets). Each rank's gradient is weighted by the samples it came from, so the
// result is the gradient of the mean loss over every rank's samples even when ranks hold different batch sizes:
// sum_r n_r g_r / sum_r n_r.
//
// `side_values` more numbers ride in the same all-reduce, summed over the ranks: a training step's control values
// (stop requests, clocks), which as collectives of their own would each cost a round trip between the processes.
class GradientAverager {
 public:
  explicit GradientAverager(std::vector<at::Tensor> parameters, int64_t side_values = 0,
                            int64_t bucket_bytes = int64_t{25} << 20);

  // Replaces every gradient by the weighted mean (a parameter without a gradient counts as zero) and returns the
  // samples of all ranks together; with none anywhere the gradients are zeroed. Afterwards each gradient is a view
  // of this averager's buckets (as DDP's gradient_as_bucket_view), so that backward passes accumulate straight
  // into them and later calls copy nothing in or out; a gradient autograd replaced is copied in once again. `side`,
  // when given, holds this rank's `side_values` numbers and receives their sums over the ranks (in the parameters'
  // float type: exact for counts up to 2^24, a clock in seconds to within its 24-bit precision).
  int64_t average(Collectives& group, int64_t samples, std::vector<double>* side = nullptr);

 private:
  struct Slot {
    size_t parameter;
    int64_t offset;
    at::Tensor part;  // the bucket's numbers at offset, shaped as the parameter
  };
  struct Bucket {
    at::Tensor flat;
    std::vector<Slot> slots;
  };
  void make_buckets();
  int64_t counts_size() const;  // the numbers after the gradients in the last bucket
  // Whether `grad` is a slot's part of a bucket, as average() leaves it.
  static bool in_bucket(const at::Tensor& grad, const at::Tensor& part);

  std::vector<at::Tensor> parameters_;
  int64_t side_values_;
  int64_t bucket_bytes_;
  std::vector<Bucket> buckets_;
};

}  // namespace vit::engine
