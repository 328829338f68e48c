// The `vit` executable: registers one subcommand per file and maps failures to exit codes.
//   0  success
//   1  the command ran but some of its work failed (e.g. some inputs could not be read)
//   2  usage error, or a model/file that cannot be used; the message says which

#include <exception>
#include <new>
#include <string>
#include <vector>

#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "app/bench_command.h"
#include "app/command.h"
#include "app/exit_codes.h"
#include "app/export_command.h"
#include "app/info_command.h"
#include "app/stop_signal.h"
#include "engine/runtime.h"
#ifdef VIT_HAVE_IMAGES
#include "app/classify_command.h"
#include "app/dataset_command.h"
#include "app/eval_command.h"
#include "app/plot_command.h"
#include "app/train_command.h"
#endif

int main(int argc, char** argv) {
  vit::app::watch_stop_signals();  // before any thread exists (stop_signal.h says why)
  // Results go to stdout; logs and errors to stderr, so output stays machine-readable when piped.
  spdlog::set_default_logger(spdlog::stderr_color_mt("vit"));
  spdlog::set_pattern("%^%l%$: %v");
  // Before any tensor exists: every command allocates and frees activations step after step.
  const std::string memory = vit::engine::configure_memory_reuse();
  if (memory.find("ignored") != std::string::npos) spdlog::warn("memory: {}", memory);

  CLI::App app{"vit: train, evaluate, inspect and export Vision Transformers (LibTorch)"};
  app.set_version_flag("--version", "vit " VIT_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options such as --quiet may also follow the subcommand
  bool verbose = false;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "Log debug messages");
  app.add_flag("-q,--quiet", quiet, "Log only warnings and errors");

  // Without OpenCV (a build for a GPU machine that lacks it) only the commands that need no images exist.
  const std::vector<vit::app::Command> commands{
#ifdef VIT_HAVE_IMAGES
      vit::app::setup_train(app),   vit::app::setup_classify(app), vit::app::setup_eval(app),
#endif
      vit::app::setup_export(app),  vit::app::setup_info(app),
#ifdef VIT_HAVE_IMAGES
      vit::app::setup_dataset(app), vit::app::setup_plot(app),
#endif
      vit::app::setup_bench(app)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, version or the usage error
    return code == 0 ? vit::app::kExitOk : vit::app::kExitUsage;
  }
  spdlog::set_level(verbose ? spdlog::level::debug : quiet ? spdlog::level::warn : spdlog::level::info);
  spdlog::debug("memory: {}", memory);

  try {
    for (const auto& command : commands) {
      if (command.cli->parsed()) return command.run();
    }
    return vit::app::kExitUsage;  // unreachable: require_subcommand(1) guarantees one was parsed
  } catch (const c10::Error& e) {
    // LibTorch's what() appends a C++ stack trace meant for its own developers (a model too large to allocate,
    // say): the user gets the message alone.
    spdlog::error("{}", e.what_without_backtrace());
    return vit::app::kExitUsage;
  } catch (const std::bad_alloc&) {  // what() is only "std::bad_alloc"
    spdlog::error(
        "out of memory: the machine could not give this command the memory it asked for (a smaller "
        "--batch-size, --cache-images or model needs less)");
    return vit::app::kExitUsage;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return vit::app::kExitUsage;
  }
}
