#pragma once
// The cache huggingface_hub shares with timm and transformers, read as https://huggingface.co/docs/hub/local-cache
// lays it out:
//   <cache>/models--<org>--<name>/refs/<revision>              the commit a branch or tag points at (no newline)
//   <cache>/models--<org>--<name>/snapshots/<commit>/<file>    relative symlinks into blobs/
//   <cache>/models--<org>--<name>/blobs/<etag>                 the files' contents
// A model that Python's timm or transformers downloaded is found here without any download.

#include <filesystem>
#include <optional>
#include <string>

#include "hub/repo_id.h"

namespace vit::hub {

// HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface: the token file's folder, and the cache's
// parent unless HF_HUB_CACHE moves it.
std::filesystem::path hf_home();

// The cache folder: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, where HF_HOME defaults to
// $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
std::filesystem::path hub_cache_dir();

// Whether `text` is a commit as snapshot folders are named: 40 lowercase hex digits.
bool is_commit_hash(const std::string& text);

// <cache>/models--<org>--<name>
std::filesystem::path repo_folder(const std::filesystem::path& cache, const RepoId& id);

// The commit `id.revision` names in the cache: itself when it is a 40-hex commit, else what refs/<revision> holds;
// std::nullopt when the cache has no such ref.
std::optional<std::string> cached_commit(const std::filesystem::path& cache, const RepoId& id);

// The snapshot folder of `id` when the cache holds its model files there (model.safetensors and config.json), else
// std::nullopt. Throws std::invalid_argument when that snapshot holds only pickle weights (pytorch_model.bin),
// which vit does not read.
std::optional<std::filesystem::path> cached_model(const std::filesystem::path& cache, const RepoId& id);

}  // namespace vit::hub
