// metrics.csv read back as written, and curves.png drawn from it.

#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>

#include "engine/pictures.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/temp_dir.h"

using vit::test::Contains;

namespace vit::engine {

TEST_CASE("metrics.csv reads back as written, empty cells as no value", "[engine][plots]") {
  test::TempDir dir;
  std::vector<MetricsRow> rows(2);
  rows[0].epoch = 1;
  rows[0].train_loss = 1.25;
  rows[0].lr = 0.002;
  rows[1].epoch = 2;
  rows[1].train_loss = 0.75;
  rows[1].val_top1 = 0.8125;
  rows[1].seconds = 30.5;
  write_metrics_csv(dir.path() / "metrics.csv", rows);
  const auto back = read_metrics_csv(dir.path() / "metrics.csv");
  REQUIRE(back.size() == 2);
  CHECK(back[0].epoch == 1);
  CHECK(back[0].train_loss == 1.25);
  CHECK(back[0].lr == 0.002);
  CHECK(std::isnan(back[0].val_top1));
  CHECK(back[1].val_top1 == 0.8125);
  CHECK(back[1].seconds == 30.5);
  CHECK(std::isnan(back[1].ema_val_top5));

  write_training_curves(dir.path() / "curves.png", back, "test");
  const cv::Mat picture = cv::imread((dir.path() / "curves.png").string());
  CHECK(picture.cols == 1260);
  CHECK(picture.rows == 370);
}

TEST_CASE("a damaged metrics.csv is an error naming the file and line", "[engine][plots]") {
  test::TempDir dir;
  const auto path = dir.path() / "metrics.csv";
  CHECK_THAT(test::error_of([&] { read_metrics_csv(path); }), Contains("cannot be read"));
  std::ofstream(path) << "epoch,loss\n1,2\n";
  CHECK_THAT(test::error_of([&] { read_metrics_csv(path); }), Contains("metrics header"));
  std::ofstream(path) << "epoch,train_loss,train_acc,val_loss,val_top1,val_top5,ema_val_top1,ema_val_top5,lr,"
                         "images_per_s,seconds\n1,0.5,,,,,,,0.1,100,2\n2,zero,,,,,,,0.1,100,2\n";
  CHECK_THAT(test::error_of([&] { read_metrics_csv(path); }), Contains("line 3: not a metrics row"));
  // Numbers are whole cells: a prefix that parses is not enough, and no infinities or NaN spelled out.
  const std::string header =
      "epoch,train_loss,train_acc,val_loss,val_top1,val_top5,ema_val_top1,ema_val_top5,lr,"
      "images_per_s,seconds\n";
  for (const std::string row : {"1x,0.5,,,,,,,0.1,100,2", "1,0.5abc,,,,,,,0.1,100,2", "1,inf,,,,,,,0.1,100,2",
                                "1,nan,,,,,,,0.1,100,2", "0,0.5,,,,,,,0.1,100,2", "-3,0.5,,,,,,,0.1,100,2",
                                "1, 0.5,,,,,,,0.1,100,2", "99999999999999999999,0.5,,,,,,,0.1,100,2"}) {
    std::ofstream(path) << header << row << "\n";
    CHECK_THAT(test::error_of([&] { read_metrics_csv(path); }), Contains("line 2: not a metrics row"));
  }
}

TEST_CASE("a diverged run's infinite loss is written as an empty cell, which reads back", "[engine][plots]") {
  test::TempDir dir;
  std::vector<MetricsRow> rows(1);
  rows[0].epoch = 1;
  rows[0].train_loss = std::numeric_limits<double>::infinity();
  rows[0].lr = 1e-3;
  write_metrics_csv(dir.path() / "metrics.csv", rows);
  const auto back = read_metrics_csv(dir.path() / "metrics.csv");
  REQUIRE(back.size() == 1);
  CHECK(std::isnan(back[0].train_loss));
  CHECK(back[0].lr == 1e-3);
}

}  // namespace vit::engine
