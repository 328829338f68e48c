#pragma once

namespace vit::app {

constexpr int kExitOk = 0;
constexpr int kExitSomeFailed = 1;  // the command ran, but some of its inputs failed
constexpr int kExitUsage = 2;       // bad arguments, or a model or file that cannot be used

}  // namespace vit::app
