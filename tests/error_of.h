#pragma once
// The message of the exception an action throws, for CHECK_THAT(error_of(...), Contains(...)); fails the test
// when nothing is thrown.

#include <exception>
#include <functional>
#include <string>

#include "tests/catch.h"

namespace vit::test {

inline std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::exception& e) {
    return e.what();
  }
  FAIL("no exception was thrown");
  return {};
}

}  // namespace vit::test
