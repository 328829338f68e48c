#include "hub/repo_id.h"

#include <cctype>
#include <stdexcept>

namespace vit::hub {
namespace {

[[noreturn]] void fail(const std::string& argument, const std::string& problem) {
  throw std::invalid_argument("'" + argument + "' is not a valid Hugging Face Hub repo id: " + problem);
}

bool allowed(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }

// huggingface_hub's validate_repo_id, for one part (org or name).
void check_part(const std::string& part, const char* what, const std::string& argument) {
  if (part.empty()) fail(argument, std::string("empty ") + what);
  if (part.size() > 96) fail(argument, std::string(what) + " longer than 96 characters");
  for (char c : part) {
    if (!allowed(c)) fail(argument, std::string(what) + " may hold only letters, digits, '-', '_' and '.'");
  }
  if (part.find("--") != std::string::npos || part.find("..") != std::string::npos)
    fail(argument, std::string(what) + " may not contain '--' or '..'");
  if (part.front() == '-' || part.front() == '.' || part.back() == '-' || part.back() == '.')
    fail(argument, std::string(what) + " may not start or end with '-' or '.'");
}

}  // namespace

std::optional<RepoId> parse_repo_id(const std::string& argument) {
  std::string rest = argument;
  bool prefixed = false;
  for (const char* prefix : {"hf-hub:", "hf_hub:"}) {
    if (rest.rfind(prefix, 0) == 0) {
      rest = rest.substr(std::char_traits<char>::length(prefix));
      prefixed = true;
    }
  }
  RepoId id;
  if (const auto at = rest.find('@'); at != std::string::npos) {
    id.revision = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  const auto slash = rest.find('/');
  // Without the prefix, only the plain `org/name` shape is an id; anything else is a path or a preset name.
  if (!prefixed && (slash == std::string::npos || rest.find('/', slash + 1) != std::string::npos || rest.empty() ||
                    rest.front() == '/' || rest.front() == '.' || rest.front() == '~'))
    return std::nullopt;
  if (slash == std::string::npos) fail(argument, "expected org/name");
  if (rest.find('/', slash + 1) != std::string::npos) fail(argument, "expected exactly one '/' (org/name)");
  id.org = rest.substr(0, slash);
  id.name = rest.substr(slash + 1);
  // `runs/best.safetensors` that is not there is a mistyped path, not a repo.
  if (!prefixed) {
    for (const char* extension : {".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".json"}) {
      const std::string e = extension;
      if (id.name.size() > e.size() && id.name.compare(id.name.size() - e.size(), e.size(), e) == 0)
        return std::nullopt;
    }
  }
  check_part(id.org, "the organisation", argument);
  check_part(id.name, "the name", argument);
  // A revision becomes a file name under refs/: no path separators or parent references.
  if (id.revision.empty() || id.revision.find("..") != std::string::npos || id.revision.front() == '/' ||
      id.revision.find('\\') != std::string::npos)
    fail(argument, "the revision after '@' must be a branch, tag or commit");
  return id;
}

}  // namespace vit::hub
