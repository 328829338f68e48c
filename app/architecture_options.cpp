#include "app/architecture_options.h"

#include <algorithm>
#include <optional>
#include <type_traits>

namespace vit::app {
namespace {

// An enum's names as command-line choices: timm's '' (no pooling) is no choice for a model that classifies.
template <typename Enum>
std::vector<std::string> choices() {
  auto names = enum_names<Enum>();
  names.erase(std::remove(names.begin(), names.end(), std::string()), names.end());
  return names;
}

}  // namespace

void add_architecture_options(CLI::App* cli, std::string& model, engine::ArchitectureOverrides& v,
                              const std::string& group) {
  cli->add_option("--model", model, "Preset or timm architecture name (`vit info --list`)")
      ->capture_default_str()
      ->group(group);
  // Each sets its std::optional only when given, so the preset's value stays otherwise.
  engine::for_each_override([&](const engine::OverrideInfo& info, auto member, auto) {
    auto& target = v.*member;
    using T = typename std::remove_reference_t<decltype(target)>::value_type;
    if constexpr (std::is_enum_v<T>) {
      cli->add_option_function<std::string>(
             info.option, [&target](const std::string& name) { target = parse_enum<T>(name); }, info.help)
          ->check(CLI::IsMember(choices<T>()))
          ->group(group);
    } else if constexpr (std::is_same_v<T, bool>) {  // spelled as timm's JSON spells it, one way only
      cli->add_option_function<std::string>(
             info.option, [&target](const std::string& value) { target = value == "true"; }, info.help)
          ->check(CLI::IsMember({"true", "false"}))
          ->group(group);
    } else {
      cli->add_option_function<T>(
             info.option, [&target](const T& value) { target = value; }, info.help)
          ->group(group);
    }
  });
}

}  // namespace vit::app
