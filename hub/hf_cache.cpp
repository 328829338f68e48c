#include "hub/hf_cache.h"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "hub/environment.h"
#include "util/text.h"

namespace vit::hub {
namespace fs = std::filesystem;
namespace {

// "~/x" -> "$HOME/x", as huggingface_hub expands its paths.
fs::path expand_home(const std::string& path) {
  if (path.rfind("~/", 0) == 0 && !env("HOME").empty()) return fs::path(env("HOME")) / path.substr(2);
  return path;
}

bool is_file(const fs::path& path) {
  std::error_code error;
  return fs::is_regular_file(path, error);  // follows the snapshot's symlink into blobs/
}

}  // namespace

bool is_commit_hash(const std::string& text) { return is_lowercase_hex(text, 40); }

fs::path hf_home() {
  if (!env("HF_HOME").empty()) return expand_home(env("HF_HOME"));
  if (!env("XDG_CACHE_HOME").empty()) return expand_home(env("XDG_CACHE_HOME")) / "huggingface";
  return expand_home("~/.cache/huggingface");
}

fs::path hub_cache_dir() {
  if (!env("HF_HUB_CACHE").empty()) return expand_home(env("HF_HUB_CACHE"));
  if (!env("HUGGINGFACE_HUB_CACHE").empty()) return expand_home(env("HUGGINGFACE_HUB_CACHE"));
  return hf_home() / "hub";
}

fs::path repo_folder(const fs::path& cache, const RepoId& id) { return cache / ("models--" + id.org + "--" + id.name); }

std::optional<std::string> cached_commit(const fs::path& cache, const RepoId& id) {
  if (is_commit_hash(id.revision)) return id.revision;
  std::ifstream ref(repo_folder(cache, id) / "refs" / id.revision);
  std::string commit;
  if (!ref || !std::getline(ref, commit) || !is_commit_hash(commit)) return std::nullopt;
  return commit;
}

std::optional<fs::path> cached_model(const fs::path& cache, const RepoId& id) {
  const auto commit = cached_commit(cache, id);
  if (!commit) return std::nullopt;
  const fs::path snapshot = repo_folder(cache, id) / "snapshots" / *commit;
  if (!is_file(snapshot / "config.json")) return std::nullopt;
  if (is_file(snapshot / "model.safetensors")) return snapshot;
  if (is_file(snapshot / "pytorch_model.bin"))
    throw std::invalid_argument("'" + id.id() + "' has only pickle weights (pytorch_model.bin) in the Hugging Face " +
                                "cache (" + snapshot.string() + "); vit reads safetensors (model.safetensors)");
  return std::nullopt;
}

}  // namespace vit::hub
