// Per-class precision, recall and F1 from a confusion matrix, checked against values computed by hand.

#include "engine/classification_report.h"
#include "tests/catch.h"

using vit::test::Contains;

namespace vit::engine {

TEST_CASE("report: precision, recall, F1 and averages of a 3-class confusion matrix", "[report]") {
  // rows = true class, columns = predicted:   class 0: 5 images, 4 right, 1 taken for class 2
  //                                           class 1: 2 images, both taken for class 0
  //                                           class 2: 3 images, all right
  const std::vector<int64_t> confusion{4, 0, 1,  //
                                       2, 0, 0,  //
                                       0, 0, 3};
  const auto r = classification_report(confusion, 3);
  REQUIRE(r.classes.size() == 3);
  CHECK(r.classes[0].support == 5);
  CHECK(r.classes[0].predicted == 6);
  CHECK(r.classes[0].precision == Approx(4.0 / 6));
  CHECK(r.classes[0].recall == Approx(4.0 / 5));
  CHECK(r.classes[0].f1 == Approx(2 * (4.0 / 6) * (4.0 / 5) / (4.0 / 6 + 4.0 / 5)));
  // Never predicted and never right: every measure 0, not a division by zero.
  CHECK(r.classes[1].precision == 0.0);
  CHECK(r.classes[1].recall == 0.0);
  CHECK(r.classes[1].f1 == 0.0);
  CHECK(r.classes[2].precision == Approx(3.0 / 4));
  CHECK(r.classes[2].recall == 1.0);
  CHECK(r.macro_recall == Approx((4.0 / 5 + 0 + 1) / 3));
  CHECK(r.weighted_recall == Approx(7.0 / 10));  // the weighted recall is the accuracy
  CHECK(r.weighted_precision == Approx((5 * (4.0 / 6) + 2 * 0 + 3 * 0.75) / 10));
}

TEST_CASE("report: classes absent from data and predictions do not dilute the macro average", "[report]") {
  const std::vector<int64_t> confusion{2, 0, 0,  //
                                       0, 0, 0,  //
                                       0, 0, 1};
  const auto r = classification_report(confusion, 3);
  CHECK(r.macro_precision == 1.0);
  CHECK(r.macro_f1 == 1.0);
}

TEST_CASE("report: a matrix of the wrong size is an error", "[report]") {
  CHECK_THROWS_WITH(classification_report({1, 2, 3}, 2), Contains("3 entries, expected 2 x 2"));
}

}  // namespace vit::engine
