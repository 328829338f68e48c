// On a CUDA build with a GPU: the same model on the GPU gives the CPU's logits. Hidden from a plain run (CI has
// no GPU); ctest registers it as "cuda_matches_cpu" when LibTorch has CUDA.

#include <torch/cuda.h>

#include "models/vision_transformer.h"
#include "tests/catch.h"

namespace vit {

TEST_CASE("the model on CUDA gives the CPU's logits, in float32 and bfloat16", "[.][cuda]") {
  REQUIRE(torch::cuda::is_available());
  torch::manual_seed(0);
  ViTConfig c;
  c.image_size = 64;
  c.patch_size = 8;
  c.num_classes = 10;
  c.embed_dim = 128;
  c.depth = 3;
  c.num_heads = 4;
  VisionTransformer model(c);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({8, 3, 64, 64});
  const auto cpu = model->forward(images);
  CHECK(cpu.std().item<double>() > 0.1);

  model->to(torch::kCUDA);
  const auto gpu = model->forward(images.to(torch::kCUDA)).cpu();
  // cuDNN may run the patch convolution in TF32, hence a looser bound than on one device.
  CHECK((gpu - cpu).abs().max().item<double>() < 5e-3);

  model->to(torch::kBFloat16);  // bf16 runs SDPA through the fused flash / memory-efficient kernels
  const auto bf16 = model->forward(images.to(torch::kCUDA, torch::kBFloat16)).to(torch::kCPU, torch::kFloat);
  CHECK((bf16 - cpu).abs().max().item<double>() < 0.1 * cpu.abs().max().item<double>());
  const double cosine = (bf16 * cpu).sum().item<double>() / (bf16.norm() * cpu.norm()).item<double>();
  CHECK(cosine > 0.999);
}

}  // namespace vit
