#include "hub/model_argument.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <stdexcept>

#include "hub/hf_cache.h"
#include "hub/repo_id.h"
#ifdef VIT_HUB_DOWNLOADS
#include "hub/hub_download.h"
#endif

namespace vit::hub {

std::string resolve_model_argument(const std::string& argument) {
  std::error_code error;
  if (std::filesystem::exists(argument, error)) return argument;
  const auto id = parse_repo_id(argument);
  if (!id) return argument;
  const auto cache = hub_cache_dir();
  std::string why_not_online;
#ifdef VIT_HUB_DOWNLOADS
  const HubSettings settings = HubSettings::from_environment();
  if (!settings.offline) {
    try {
      return download_model(cache, *id, settings).string();
    } catch (const HubUnreachable& e) {
      // As huggingface_hub does: without the Hub, the cached copy (if any) serves.
      if (const auto folder = cached_model(cache, *id)) {
        spdlog::warn("{}: using the cached copy of '{}' ({})", e.what(), id->id(), folder->string());
        return folder->string();
      }
      throw std::invalid_argument(std::string(e.what()) + ", and '" + id->id() +
                                  "' is not in the Hugging Face cache (" + cache.string() + ")");
    }
  }
  why_not_online = "HF_HUB_OFFLINE is set, so nothing is downloaded";
#else
  why_not_online = "this vit was built without libcurl, so it does not download";
#endif
  if (const auto folder = cached_model(cache, *id)) return folder->string();
  throw std::invalid_argument("'" + argument + "' is neither an existing file or folder nor a model in the Hugging " +
                              "Face cache (" + cache.string() + ", revision '" + id->revision + "'); " +
                              why_not_online + " (fill the cache with `huggingface-cli download " + id->id() +
                              " config.json model.safetensors`, or point HF_HUB_CACHE at another cache)");
}

}  // namespace vit::hub
