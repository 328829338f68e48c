// Data-parallel training over c10d's Gloo: two ranks (threads of this process, joined through a FileStore)
// against one process training on the whole batch, and what a rank sees when its peer is lost.

#include <ATen/ops/allclose.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/utils.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

#include "engine/collectives.h"
#include "engine/data_parallel.h"
#include "engine/mixup.h"
#include "engine/optimizer.h"
#include "engine/train_step.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/models/small_model.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::TempDir;

namespace vit::engine {
namespace {

using namespace std::chrono_literals;

VisionTransformer model_with_seed(uint64_t seed) {
  torch::manual_seed(seed);
  return VisionTransformer(test::small_config());  // 16x16 images, 3 classes
}

struct Data {
  at::Tensor images;   // (8, 3, 16, 16)
  at::Tensor targets;  // (8, 3) soft targets
};

// The batches of every step, made before any thread starts (the default generator is shared).
std::vector<Data> make_data() {
  torch::manual_seed(1000);
  std::vector<Data> steps;
  for (int step = 0; step < 3; ++step) {
    const auto labels = at::randint(0, 3, {8}, at::kLong);
    steps.push_back({at::randn({8, 3, 16, 16}), smooth_one_hot(labels, 3, 0.1)});
  }
  return steps;
}

constexpr int kSteps = 3;
// Rank 0 trains on the first 5 images of each batch, rank 1 on the last 3: unequal shares, so only a gradient
// weighted by samples matches the single process's.
constexpr int64_t kSplit = 5;

std::vector<at::Tensor> train_single(VisionTransformer model, const std::vector<Data>& steps) {
  AdamW optimizer(named_parameters(*model), AdamWOptions{0.9, 0.999, 1e-8, 0.05});
  for (int step = 0; step < kSteps; ++step) {
    const Data& data = steps[step];
    forward_backward(model, data.images, data.targets, false);
    optimizer.step(1e-3);
    optimizer.zero_grad();
  }
  return model->parameters();
}

std::vector<at::Tensor> train_rank(const std::filesystem::path& store, int rank, VisionTransformer model,
                                   const std::vector<Data>& steps) {
  CollectivesOptions options;
  options.timeout = 60s;
  auto group = Collectives::connect_file(store, rank, 2, options);
  CHECK(group->backend() == "gloo");
  CHECK(group->sums_in_shared_memory());  // both ranks on this machine: the gradients go through shared memory
  broadcast_module(*group, *model);
  AdamW optimizer(named_parameters(*model), AdamWOptions{0.9, 0.999, 1e-8, 0.05});
  GradientAverager averager(model->parameters());
  std::vector<const void*> first_grads;
  for (int step = 0; step < kSteps; ++step) {
    const Data& data = steps[step];
    const int64_t begin = rank == 0 ? 0 : kSplit;
    const int64_t end = rank == 0 ? kSplit : 8;
    forward_backward(model, data.images.slice(0, begin, end), data.targets.slice(0, begin, end), false);
    CHECK(averager.average(*group, end - begin) == 8);
    // From the first average on, the gradients are the averager's bucket, back to back (the small model's fit
    // in one), and backward accumulates into them: the same memory every step, nothing copied in or out.
    std::vector<const void*> grads;
    const auto parameters = model->parameters();
    for (const auto& p : parameters) grads.push_back(p.grad().data_ptr());
    for (size_t i = 1; i < parameters.size(); ++i)
      CHECK(grads[i] == parameters[i - 1].grad().data_ptr<float>() + parameters[i - 1].numel());
    if (step == 0) first_grads = grads;
    CHECK(grads == first_grads);
    optimizer.step(1e-3);
    optimizer.zero_grad();
  }
  group->barrier();
  return model->parameters();
}

}  // namespace

TEST_CASE("two Gloo ranks with unequal batches train exactly as one process on the whole batch",
          "[data_parallel][distributed]") {
  REQUIRE(distributed_available());  // the full build requires c10d (libgloo-dev)
  TempDir dir;
  const auto store = dir.path() / "store";
  const auto steps = make_data();
  // Rank 1 starts from other weights: the broadcast must replace them with rank 0's.
  auto model0 = model_with_seed(7);
  auto model1 = model_with_seed(99);
  auto single_model = model_with_seed(7);
  auto rank1 = std::async(std::launch::async, [&] { return train_rank(store, 1, model1, steps); });
  const auto rank0 = train_rank(store, 0, model0, steps);
  const auto other = rank1.get();
  const auto single = train_single(single_model, steps);
  REQUIRE(rank0.size() == single.size());
  double largest = 0.0;
  for (size_t i = 0; i < single.size(); ++i) {
    CHECK(at::equal(rank0[i], other[i]));  // the replicas stay identical, bit for bit
    largest = std::max(largest, (rank0[i] - single[i]).abs().max().item<double>());
  }
  INFO("largest difference from one process: " << largest);
  CHECK(largest <= 1e-5);
  // And the steps did move the weights: the comparison is not between untouched copies.
  const auto initial = model_with_seed(7)->parameters();
  double moved = 0.0;
  for (size_t i = 0; i < single.size(); ++i)
    moved = std::max(moved, (single[i] - initial[i]).abs().max().item<double>());
  CHECK(moved > 1e-3);
}

TEST_CASE("a gradient no rank has stays undefined, a rank without samples contributes nothing",
          "[data_parallel][distributed]") {
  REQUIRE(distributed_available());  // the full build requires c10d (libgloo-dev)
  TempDir dir;
  const auto run = [&](int rank) {
    auto group = Collectives::connect_file(dir.path() / "store", rank, 2, CollectivesOptions{});
    auto used = at::zeros({3}).requires_grad_();
    auto unused = at::zeros({2}).requires_grad_();
    if (rank == 0) (used * at::tensor({1.0f, 2.0f, 3.0f})).sum().backward();  // rank 1: an empty batch
    GradientAverager averager({used, unused});
    const int64_t total = averager.average(*group, rank == 0 ? 4 : 0);
    return std::make_tuple(total, used.grad(), unused.grad().defined());
  };
  auto other = std::async(std::launch::async, run, 1);
  const auto [total, grad, unused_defined] = run(0);
  const auto [total1, grad1, unused_defined1] = other.get();
  CHECK(total == 4);
  CHECK(total1 == 4);
  // Rank 0's gradient from 4 samples, rank 1's from none: the mean over the 4 samples is rank 0's own.
  CHECK(at::allclose(grad, at::tensor({1.0f, 2.0f, 3.0f})));
  CHECK(at::equal(grad, grad1));
  CHECK_FALSE(unused_defined);
  CHECK_FALSE(unused_defined1);
}

TEST_CASE("side values travel summed with the gradients, also when no parameter trains",
          "[data_parallel][distributed]") {
  REQUIRE(distributed_available());  // the full build requires c10d (libgloo-dev)
  TempDir dir;
  const auto run = [&](int rank, bool with_parameter) {
    auto group = Collectives::connect_file(dir.path() / (with_parameter ? "store" : "store-frozen"), rank, 2,
                                           CollectivesOptions{});
    auto weight = at::zeros({2}).requires_grad_();
    (weight * at::tensor({1.0f + static_cast<float>(rank), 4.0f})).sum().backward();
    std::vector<at::Tensor> parameters;
    if (with_parameter) parameters.push_back(weight);
    GradientAverager averager(parameters, 3);
    // A flag only rank 1 raises, a clock, a count.
    std::vector<double> side{rank == 1 ? 1.0 : 0.0, 100.25 + rank, 3.0};
    const int64_t total = averager.average(*group, 2, &side);
    std::vector<double> wrong(2);
    const auto error = test::error_of([&] { averager.average(*group, 2, &wrong); });
    return std::make_tuple(total, side, weight.grad().clone(), error);
  };
  for (const bool with_parameter : {true, false}) {
    auto other = std::async(std::launch::async, run, 1, with_parameter);
    const auto [total, side, grad, error] = run(0, with_parameter);
    const auto [total1, side1, grad1, error1] = other.get();
    CHECK(total == 4);
    CHECK(total1 == 4);
    CHECK(side == std::vector<double>{1.0, 201.5, 6.0});
    CHECK(side1 == side);
    // With the parameter its gradient is the mean of (1, 4) and (2, 4); without, each rank keeps its own.
    CHECK(at::allclose(grad, with_parameter ? at::tensor({1.5f, 4.0f}) : at::tensor({1.0f, 4.0f})));
    CHECK(at::allclose(grad1, with_parameter ? at::tensor({1.5f, 4.0f}) : at::tensor({2.0f, 4.0f})));
    CHECK_THAT(error, Contains("set up for 3 side values, given 2"));
  }
}

TEST_CASE("a rank whose peer is gone names the lost rank instead of failing on a socket",
          "[data_parallel][distributed]") {
  REQUIRE(distributed_available());  // the full build requires c10d (libgloo-dev)
  TempDir dir;
  CollectivesOptions options;
  options.timeout = 3s;
  const auto store = dir.path() / "store";
  auto peer = std::async(std::launch::async, [&] {
    auto group = Collectives::connect_file(store, 1, 2, options);
    CHECK(all_ranks_ok(*group, true));
    CHECK_FALSE(all_ranks_ok(*group, false));  // rank 1 reports a failure: both learn of it
    // ... and leaves without a word, as a killed process would.
  });
  auto group = Collectives::connect_file(store, 0, 2, options);
  CHECK(all_ranks_ok(*group, true));
  CHECK_FALSE(all_ranks_ok(*group, true));
  peer.get();
  at::Tensor flags = at::zeros({2});
  const auto start = std::chrono::steady_clock::now();
  try {
    group->all_reduce_max(flags);
    FAIL("the all-reduce with a lost peer returned");
  } catch (const LostPeerError& e) {
    CHECK_THAT(e.what(), Contains("lost rank 1 of 2"));
    CHECK(e.lost_ranks() == std::vector<int>{1});
  }
  CHECK(std::chrono::steady_clock::now() - start < 30s);
}

TEST_CASE("a rank whose peer left names it from a sum in shared memory too", "[data_parallel][distributed]") {
  REQUIRE(distributed_available());
  TempDir dir;
  CollectivesOptions options;
  options.timeout = 20s;
  const auto store = dir.path() / "store";
  auto peer = std::async(std::launch::async, [&] {
    auto group = Collectives::connect_file(store, 1, 2, options);
    std::vector<at::Tensor> values{at::full({1000}, 2.0f)};
    group->all_reduce_sum(values);
    CHECK(values[0].eq(3.0f).all().item<bool>());
    // ... and leaves: its part of the shared memory says so.
  });
  auto group = Collectives::connect_file(store, 0, 2, options);
  REQUIRE(group->sums_in_shared_memory());
  std::vector<at::Tensor> values{at::full({1000}, 1.0f)};
  group->all_reduce_sum(values);
  CHECK(values[0].eq(3.0f).all().item<bool>());
  peer.get();
  const auto start = std::chrono::steady_clock::now();
  try {
    group->all_reduce_sum(values);
    FAIL("the sum with a lost peer returned");
  } catch (const LostPeerError& e) {
    CHECK_THAT(e.what(), Contains("lost rank 1 of 2"));
    CHECK(e.lost_ranks() == std::vector<int>{1});
  }
  CHECK(std::chrono::steady_clock::now() - start < 10s);  // the roll call's few seconds, not the 20 s timeout
}

TEST_CASE("VIT_SHARED_MEMORY=0 keeps every sum on Gloo, with the same result", "[data_parallel][distributed]") {
  REQUIRE(distributed_available());
  TempDir dir;
  struct KeepGloo {  // set for this test only, whatever ends it
    KeepGloo() { setenv("VIT_SHARED_MEMORY", "0", 1); }
    ~KeepGloo() { unsetenv("VIT_SHARED_MEMORY"); }
  } keep_gloo;
  const auto store = dir.path() / "store";
  auto peer = std::async(std::launch::async, [&] {
    auto group = Collectives::connect_file(store, 1, 2, CollectivesOptions{});
    CHECK_FALSE(group->sums_in_shared_memory());
    std::vector<at::Tensor> values{at::full({10}, 2.0f)};
    group->all_reduce_sum(values);
    CHECK(values[0].eq(3.0f).all().item<bool>());
  });
  auto group = Collectives::connect_file(store, 0, 2, CollectivesOptions{});
  CHECK_FALSE(group->sums_in_shared_memory());
  std::vector<at::Tensor> values{at::full({10}, 1.0f)};
  group->all_reduce_sum(values);
  CHECK(values[0].eq(3.0f).all().item<bool>());
  peer.get();
}

TEST_CASE("unknown or unavailable backends are refused by name", "[data_parallel][distributed]") {
  REQUIRE(distributed_available());  // the full build requires c10d (libgloo-dev)
  TempDir dir;
  CollectivesOptions options;
  options.backend = "nccl";
  CHECK_THROWS_WITH(Collectives::connect_file(dir.path() / "a", 0, 1, options),
                    Contains("--dist-backend nccl needs --device cuda"));
  options.backend = "mpi";
  CHECK_THROWS_WITH(Collectives::connect_file(dir.path() / "b", 0, 1, options),
                    Contains("--dist-backend must be auto, gloo or nccl, got 'mpi'"));
}

}  // namespace vit::engine
