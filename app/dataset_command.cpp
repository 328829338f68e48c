#include "app/dataset_command.h"

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "app/exit_codes.h"
#include "data/fashion_mnist.h"

namespace vit::app {
namespace {

struct DatasetOptions {
  std::string out;
  std::string source = "/usr/share/datasets/fashion-mnist";  // Debian's dataset-fashion-mnist
};

int run_fashion_mnist(const DatasetOptions& o) {
  int64_t last_tenth = -1;
  const auto summary = data::convert_fashion_mnist(o.source, o.out, [&](int64_t done, int64_t total) {
    const int64_t tenth = done * 10 / std::max<int64_t>(1, total);
    if (tenth != last_tenth) {
      last_tenth = tenth;
      spdlog::debug("converted {}/{} images", done, total);
    }
  });
  if (summary.already_present) {
    spdlog::info("'{}' already holds Fashion-MNIST ({} training, {} validation images); nothing to do", o.out,
                 summary.train_images, summary.val_images);
  } else {
    spdlog::info("wrote Fashion-MNIST to '{}': {} training images in {}/train, {} validation (test) images in {}/val",
                 o.out, summary.train_images, o.out, summary.val_images, o.out);
  }
  return kExitOk;
}

}  // namespace

Command setup_dataset(CLI::App& app) {
  auto options = std::make_shared<DatasetOptions>();
  CLI::App* cli = app.add_subcommand("dataset", "Convert a packaged dataset into an image folder tree");
  CLI::App* fmnist = cli->add_subcommand(
      "fashion-mnist",
      "Fashion-MNIST (IDX files) -> OUT/train/<class>/*.png (60,000) and OUT/val/<class>/*.png (10,000)");
  fmnist->add_option("-o,--out", options->out, "Folder to create")->required();
  fmnist->add_option("--source", options->source, "Folder with the IDX files (.gz or plain)")->capture_default_str();
  cli->require_subcommand(1);
  return {cli, [options] { return run_fashion_mnist(*options); }};
}

}  // namespace vit::app
