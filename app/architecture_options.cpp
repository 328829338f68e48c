#include "app/architecture_options.h"

#include <optional>
#include <type_traits>

namespace vit::app {

void add_architecture_options(CLI::App* cli, std::string& model, engine::ArchitectureOverrides& v,
                              const std::string& group) {
  cli->add_option("--model", model, "Preset (see `vit info --help`)")->capture_default_str()->group(group);
  // Each sets its std::optional only when given, so the preset's value stays otherwise.
  engine::for_each_override([&](const engine::OverrideInfo& info, auto member, auto) {
    auto& target = v.*member;
    using T = typename std::remove_reference_t<decltype(target)>::value_type;
    if constexpr (std::is_same_v<T, GlobalPool>) {
      cli->add_option_function<std::string>(
             info.option, [&target](const std::string& name) { target = parse_global_pool(name); }, info.help)
          ->check(CLI::IsMember({"token", "avg", "max", "avgmax"}))
          ->group(group);
    } else {
      cli->add_option_function<T>(
             info.option, [&target](const T& value) { target = value; }, info.help)
          ->group(group);
    }
  });
}

}  // namespace vit::app
