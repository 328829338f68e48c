#pragma once
// Catch2 2.x (Debian 12) and 3.x (newer distributions, the GPU machine) differ in header location and in a few
// names; the tests include this file and use the names below, which mean the same under both.
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
using Catch::Approx;  // global in Catch2 2, namespaced in 3
namespace vit::test {
// A string matcher for "contains this text" (Catch2 3 calls it ContainsSubstring).
inline auto Contains(const std::string& text) { return Catch::Matchers::ContainsSubstring(text); }
}  // namespace vit::test
#else
#include <catch2/catch.hpp>
namespace vit::test {
using Catch::Matchers::Contains;
}  // namespace vit::test
#endif
