#pragma once
// Catch2 2.x (Debian 12) and 3.x (newer distributions) put the header in different places.
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

#if __has_include(<catch2/catch_all.hpp>)
using Catch::Approx;  // global in Catch2 2, namespaced in 3
#endif
