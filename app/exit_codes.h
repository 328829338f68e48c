#pragma once

namespace vit::app {

constexpr int kExitOk = 0;
constexpr int kExitSomeFailed = 1;  // the command ran, but some of its inputs failed
constexpr int kExitUsage = 2;       // bad arguments, or a model or file that cannot be used
constexpr int kExitLostPeer = 3;    // a run of several processes lost one of them

}  // namespace vit::app
