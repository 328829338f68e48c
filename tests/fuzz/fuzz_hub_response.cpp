// The Hub's answer to a HEAD (hub/hub_response.h): header lines from the network that become a commit folder, a
// blob's file name and a size in the Hugging Face cache. The input is the raw header block, status lines included
// (as libcurl hands it over after redirects); the status is the last status line's.
#include <algorithm>
#include <filesystem>
#include <string>

#include "hub/hf_cache.h"
#include "hub/hub_response.h"
#include "tests/fuzz/fuzz_support.h"
#include "util/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  vit::hub::Response response;
  response.status = 200;
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = std::min(text.find('\n', begin), text.size());
    const std::string line = text.substr(begin, end + 1 - begin);
    response.add_header_line(line);
    const size_t space = line.find(' ');
    if (line.rfind("HTTP/", 0) == 0 && space != std::string::npos) {  // "HTTP/1.1 302 Found", "HTTP/2 200"
      if (const auto status = vit::parse_integer(line.substr(space + 1, 3)))
        response.status = static_cast<long>(*status);
    }
    begin = end + 1;
  }
  const vit::hub::RepoId id{"timm", "tiny", "main"};
  vit::fuzz::expect_result_or_clear_error("timm/tiny", [&] {
    const auto metadata =
        vit::hub::file_metadata_of(response, id, "model.safetensors",
                                   "http://127.0.0.1/timm/tiny/resolve/main/model.safetensors", "http://127.0.0.1");
    if (!metadata) return;
    // What is accepted names nothing outside the cache's folders and is a real size.
    if (!vit::hub::is_commit_hash(metadata->commit)) vit::fuzz::finding("accepted commit '" + metadata->commit + "'");
    const std::filesystem::path blob(metadata->etag);
    if (blob.filename() != blob || metadata->etag == ".." || metadata->etag == "." || metadata->etag.empty())
      vit::fuzz::finding("accepted etag '" + metadata->etag + "' is not one file name");
    if (metadata->size < -1) vit::fuzz::finding("accepted size " + std::to_string(metadata->size));
    if (metadata->url.empty()) vit::fuzz::finding("no URL to fetch from");
  });
  return 0;
}
