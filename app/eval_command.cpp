#include "app/eval_command.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "app/exit_codes.h"
#include "app/inference_options.h"
#include "data/image_folder.h"
#include "engine/classification_report.h"
#include "engine/evaluate.h"
#include "engine/pictures.h"
#include "util/files.h"

namespace vit::app {
namespace {

namespace fs = std::filesystem;

struct EvalOptions {
  InferenceOptions model;
  fs::path data_dir;
  std::string format = "text";
  fs::path confusion_csv;
  fs::path plots_dir;
};

void print_text(const EvalOptions& o, const data::ImageFolder& folder, const engine::EvalResult& r,
                const engine::ClassificationReport& report) {
  const auto& names = folder.classes;
  size_t width = 12;  // "weighted avg"
  for (const auto& name : names) width = std::max(width, name.size());
  fmt::print("model       {}\n", o.model.model);
  fmt::print("data        {} ({} images)\n", o.data_dir.string(), r.count);
  if (o.model.tta != "none") fmt::print("tta         {}\n", o.model.tta);
  fmt::print("top-1       {:.4f}\ntop-5       {:.4f}\nloss        {:.4f}\n\n", r.top1, r.top5, r.loss);
  fmt::print("{:<{}}  precision  recall      f1  support\n", "class", width);
  for (size_t c = 0; c < names.size(); ++c) {
    const auto& m = report.classes[c];
    fmt::print("{:<{}}  {:9.4f}  {:6.4f}  {:6.4f}  {:7}\n", names[c], width, m.precision, m.recall, m.f1, m.support);
  }
  fmt::print("{:<{}}  {:9.4f}  {:6.4f}  {:6.4f}  {:7}\n", "macro avg", width, report.macro_precision,
             report.macro_recall, report.macro_f1, r.count);
  fmt::print("{:<{}}  {:9.4f}  {:6.4f}  {:6.4f}  {:7}\n\n", "weighted avg", width, report.weighted_precision,
             report.weighted_recall, report.weighted_f1, r.count);

  // Columns are predicted classes, numbered as the rows, to keep the table narrow whatever the class names.
  const auto k = static_cast<size_t>(r.num_classes);
  size_t cell = 1;
  for (auto count : r.confusion) cell = std::max(cell, std::to_string(count).size());
  cell = std::max(cell, std::to_string(k - 1).size());
  fmt::print("confusion matrix (rows: true class, columns: predicted class)\n");
  fmt::print("{:>{}}    ", "", width + 4);
  for (size_t c = 0; c < k; ++c) fmt::print(" {:>{}}", c, cell);
  fmt::print("\n");
  for (size_t t = 0; t < k; ++t) {
    fmt::print("{:>3} {:<{}}    ", t, names[t], width);
    for (size_t p = 0; p < k; ++p) fmt::print(" {:>{}}", r.confusion[t * k + p], cell);
    fmt::print("\n");
  }
}

nlohmann::json metrics_json(double precision, double recall, double f1) {
  return {{"precision", precision}, {"recall", recall}, {"f1", f1}};
}

void print_json(const EvalOptions& o, const data::ImageFolder& folder, const engine::EvalResult& r,
                const engine::ClassificationReport& report, int64_t failed) {
  nlohmann::json classes = nlohmann::json::array();
  for (size_t c = 0; c < folder.classes.size(); ++c) {
    const auto& m = report.classes[c];
    auto entry = metrics_json(m.precision, m.recall, m.f1);
    entry["name"] = folder.classes[c];
    entry["support"] = m.support;
    classes.push_back(entry);
  }
  const auto k = static_cast<size_t>(r.num_classes);
  nlohmann::json confusion = nlohmann::json::array();
  for (size_t t = 0; t < k; ++t)
    confusion.push_back(std::vector<int64_t>(r.confusion.begin() + static_cast<long>(t * k),
                                             r.confusion.begin() + static_cast<long>((t + 1) * k)));
  nlohmann::json out{
      {"model", o.model.model},
      {"data", o.data_dir.string()},
      {"images", r.count},
      {"tta", o.model.tta},
      {"failed", failed},
      {"top1", r.top1},
      {"top5", r.top5},
      {"loss", r.loss},
      {"classes", classes},
      {"macro_avg", metrics_json(report.macro_precision, report.macro_recall, report.macro_f1)},
      {"weighted_avg", metrics_json(report.weighted_precision, report.weighted_recall, report.weighted_f1)},
      {"confusion", confusion}};
  std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

int run_eval(const EvalOptions& o) {
  std::error_code error;
  const fs::path csv_folder = o.confusion_csv.parent_path().empty() ? "." : o.confusion_csv.parent_path();
  if (!o.confusion_csv.empty() && !fs::is_directory(csv_folder, error))
    throw std::invalid_argument("--confusion-csv: folder '" + csv_folder.string() + "' does not exist");
  // A .csv name only, so that a slip (--confusion-csv RUN/best.safetensors) cannot overwrite weights or images.
  if (!o.confusion_csv.empty() && o.confusion_csv.extension() != ".csv")
    throw std::invalid_argument("--confusion-csv: expected a file name ending in .csv, got '" +
                                o.confusion_csv.string() + "'");
  auto model = open_inference_model(o.model);
  if (!o.plots_dir.empty()) create_output_folder(o.plots_dir, "--plots");  // before the evaluation's minutes
  const engine::FolderEvaluation evaluation = engine::evaluate_folder(*model, o.data_dir, predict_options(o.model));
  const data::ImageFolder& folder = evaluation.folder;
  const engine::EvalResult& result = evaluation.result;

  for (const auto& failure : result.failures) spdlog::warn("left out {}", failure.reason);  // names the file
  const auto failed = static_cast<int64_t>(result.failures.size());
  if (result.count == 0) {
    spdlog::error("none of the {} images in '{}' could be read", folder.samples.size(), o.data_dir.string());
    return kExitSomeFailed;
  }
  if (o.format == "json") {
    print_json(o, folder, result, evaluation.report, failed);
  } else {
    print_text(o, folder, result, evaluation.report);
  }
  if (!o.confusion_csv.empty()) {
    engine::write_confusion_csv(o.confusion_csv, folder.classes, result.confusion);
    spdlog::info("confusion matrix written to '{}'", o.confusion_csv.string());
  }
  if (!o.plots_dir.empty()) {
    const fs::path picture = o.plots_dir / "confusion.png";
    engine::write_confusion_picture(
        picture, result.confusion, folder.classes,
        fmt::format("vit eval: {} on {} (top-1 {:.4f})", fs::path(o.model.model).filename().string(),
                    o.data_dir.filename().string(), result.top1));
    spdlog::info("confusion matrix drawn to '{}'", picture.string());
  }
  if (failed > 0) {
    spdlog::warn("{} of {} images could not be read and were left out", failed, folder.samples.size());
    return kExitSomeFailed;
  }
  return kExitOk;
}

}  // namespace

Command setup_eval(CLI::App& app) {
  auto options = std::make_shared<EvalOptions>();
  CLI::App* cli = app.add_subcommand("eval",
                                     "Evaluate a model on an image folder: accuracy, per-class metrics, "
                                     "confusion matrix");
  add_inference_options(cli, options->model);
  cli->add_option("DATA_DIR", options->data_dir,
                  "Image folder: DATA_DIR/<class>/**/<image>, class folders named as the model's classes")
      ->required();
  cli->add_option("--format", options->format, "text (tables) or json (the whole report)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cli->add_option("--confusion-csv", options->confusion_csv, "Also write the confusion matrix to this CSV file");
  cli->add_option(
      "--plots", options->plots_dir,
      "Also draw DIR/confusion.png: the row-normalised confusion matrix with class names and a colour scale");
  cli->footer(
      "Exit status: 0 on success, 1 when some images could not be read (they are left out of the figures and "
      "listed on stderr), 2 for a usage, data folder or model error.");
  return {cli, [options] { return run_eval(*options); }};
}

}  // namespace vit::app
