#pragma once
// Downloading a model's files from the Hugging Face Hub into huggingface_hub's cache, as its hf_hub_download does
// (https://huggingface.co/docs/hub/local-cache): HEAD {endpoint}/{repo}/resolve/{revision}/{file} gives the
// commit (X-Repo-Commit), the blob's name (X-Linked-Etag or ETag) and size (X-Linked-Size or Content-Length);
// the file then goes to blobs/<etag>.incomplete, is size-checked (and, for LFS files whose etag is a SHA-256,
// hash-checked) and renamed to blobs/<etag>; snapshots/<commit>/<file> becomes a relative symlink to it and
// refs/<revision> names the commit. A lock file per blob (.locks/models--org--name/<etag>.lock, as
// huggingface_hub's) keeps two processes from writing the same blob. libcurl does the HTTP: redirects, proxies from
// the environment, verified TLS.

#include <filesystem>
#include <stdexcept>
#include <string>

#include "hub/hub_response.h"
#include "hub/repo_id.h"

namespace vit::hub {

// How to reach the Hub, from the environment as huggingface_hub reads it.
struct HubSettings {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT
  std::string token;      // HF_TOKEN, HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH (default $HF_HOME/token)
  bool offline = false;   // HF_HUB_OFFLINE=1 (or ON, YES, TRUE): no request at all
  bool progress = false;  // a progress line on stderr (when it is a terminal)

  static HubSettings from_environment();
};

// Brings config.json, model.safetensors and (when the repo has one) preprocessor_config.json of `id` at its
// revision into `cache` and returns the snapshot folder holding them. Files already in the cache are not
// downloaded again (one HEAD each), unless their blob fails its size or hash check. Throws HubUnreachable
// (hub_response.h), and std::invalid_argument with a message naming the repo for everything the user must fix: a repo
// that does not exist or is private, a gated repo or a refused token (401 / 403), a revision or file that does not
// exist, pickle-only weights; std::runtime_error for a download cut short or failing its checks (nothing is left
// behind).
std::filesystem::path download_model(const std::filesystem::path& cache, const RepoId& id, const HubSettings& settings);

}  // namespace vit::hub
