#pragma once
// ImageNet-1k's class names in the usual index order ("tench", "goldfish", ..., "toilet tissue"), for pretrained
// 1000-class checkpoints that name none: a timm model then prints "golden retriever", not "207". The names are
// torchvision's (models/imagenet_classes.txt, compiled in).

#include <cstdint>
#include <string>
#include <vector>

namespace vit {

const std::vector<std::string>& imagenet_class_names();

// The names a checkpoint without its own gets: ImageNet-1k's for 1000 classes, else "0", "1", ....
std::vector<std::string> fallback_class_names(int64_t num_classes);

}  // namespace vit
