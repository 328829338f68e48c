#include "data/batch_tensor.h"

#include <ATen/ops/from_blob.h>

namespace vit::data {

TensorBatch to_tensors(Batch&& batch, int channels, int64_t image_size) {
  // The tensor takes ownership of the pixel buffer: it is freed when the last tensor using it goes away.
  auto* pixels = new std::vector<float>(std::move(batch.pixels));
  auto* labels = new std::vector<int64_t>(std::move(batch.labels));
  TensorBatch out;
  out.images = at::from_blob(
      pixels->data(), {batch.size, channels, image_size, image_size}, [pixels](void*) { delete pixels; },
      at::TensorOptions().dtype(at::kFloat));
  out.labels = at::from_blob(
      labels->data(), {batch.size}, [labels](void*) { delete labels; }, at::TensorOptions().dtype(at::kLong));
  return out;
}

}  // namespace vit::data
