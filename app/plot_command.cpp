#include "app/plot_command.h"

#include <filesystem>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "app/exit_codes.h"
#include "engine/pictures.h"

namespace vit::app {
namespace {

struct PlotOptions {
  std::filesystem::path run_dir;
  std::filesystem::path out;  // default RUN_DIR/curves.png
};

int run_plot(const PlotOptions& o) {
  const auto rows = engine::read_metrics_csv(o.run_dir / "metrics.csv");
  if (rows.empty()) throw std::invalid_argument("'" + (o.run_dir / "metrics.csv").string() + "' has no epochs yet");
  const auto out = o.out.empty() ? o.run_dir / "curves.png" : o.out;
  engine::write_training_curves(out, rows, "vit train: " + std::filesystem::absolute(o.run_dir).filename().string());
  spdlog::info("{} epoch{} drawn to '{}'", rows.size(), rows.size() == 1 ? "" : "s", out.string());
  return kExitOk;
}

}  // namespace

Command setup_plot(CLI::App& app) {
  auto options = std::make_shared<PlotOptions>();
  CLI::App* cli = app.add_subcommand("plot", "Draw a training run's curves (loss, accuracy, learning rate) as PNG");
  cli->add_option("RUN_DIR", options->run_dir, "Run folder of vit train (holds metrics.csv)")
      ->required()
      ->check(CLI::ExistingDirectory);
  // A .png name only: the picture is PNG whatever the name says, and a slip (-o RUN_DIR/metrics.csv) must not
  // overwrite the run's own files.
  cli->add_option("-o,--out", options->out, "Picture to write, a .png file (default RUN_DIR/curves.png)")
      ->check(CLI::Validator(
          [](const std::string& path) {
            return std::filesystem::path(path).extension() == ".png" ? std::string()
                                                                     : "expected a file name ending in .png";
          },
          "PNG", "PNG"));
  return {cli, [options] { return run_plot(*options); }};
}

}  // namespace vit::app
