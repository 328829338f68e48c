#pragma once
// Turning Fashion-MNIST (Zalando's 28x28 grayscale clothing images, shipped as IDX files, e.g. by the Debian
// package dataset-fashion-mnist in /usr/share/datasets/fashion-mnist) into an ImageFolder tree of PNGs, the
// layout every other dataset of this toolkit uses: OUT/{train,val}/<class>/<index>.png.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace vit::data {

// The ten class names in label order, as the dataset defines them.
const std::vector<std::string>& fashion_mnist_classes();

// A folder name that is safe on every file system for a class name: path separators and characters Windows
// forbids become '_' ("T-shirt/top" -> "T-shirt_top"); "", "." and ".." become "_".
std::string class_folder_name(const std::string& class_name);

struct ConvertSummary {
  int64_t train_images = 0;
  int64_t val_images = 0;
  bool already_present = false;  // OUT held a finished conversion; nothing was written
};

// Writes OUT/train/<class folder>/<index>.png (from train-images-idx3-ubyte / train-labels-idx1-ubyte) and
// OUT/val/<class folder>/<index>.png (from the t10k files) as 8-bit grayscale PNGs. <index> is the image's
// position in its IDX file, zero-padded so that names sort in dataset order. Each source file is read from
// SOURCE/<name>.gz or, failing that, SOURCE/<name>, gzipped or not.
//
// The tree is written under a temporary sibling folder (.OUT.partial-<pid>) and renamed into place at the end,
// so an interrupted run never leaves a half-converted OUT; leftovers of dead runs are removed. A marker,
// OUT/.vit-dataset.json (dataset, classes, counts), is written last: if OUT already holds one for
// Fashion-MNIST the call returns its counts with already_present = true and writes nothing. An empty folder
// at OUT is replaced; anything else at OUT (a file, a user's folder, another dataset) is an error naming it,
// and nothing is written into it.
//
// `progress(done, total)` is called now and then with images written so far and the total (may be empty); an
// exception it throws stops the conversion (the temporary folder is removed) and propagates.
// Throws std::runtime_error naming the file and the problem: a source file missing or invalid (see
// idx_file.h), a label of 10 or more, label and image counts that differ, a PNG that cannot be written.
ConvertSummary convert_fashion_mnist(const std::filesystem::path& source_dir, const std::filesystem::path& out_dir,
                                     const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace vit::data
