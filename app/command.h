#pragma once
// A subcommand of `vit`: its CLI11 parser and the function that runs it once parsed. Each subcommand file
// provides `Command setup_xxx(CLI::App& app)`, which registers its options on `app`; the options live in a
// struct owned by `run`.

#include <functional>

#include <CLI/CLI.hpp>

namespace vit::app {

struct Command {
  CLI::App* cli;
  std::function<int()> run;  // returns the exit code (exit_codes.h)
};

}  // namespace vit::app
