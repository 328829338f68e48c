#pragma once
// What the Hub's answer to a HEAD of {endpoint}/{repo}/resolve/{revision}/{file} says about that file: the
// interpretation of headers that come from the network, kept apart from libcurl so that it is unit-tested and
// fuzzed (tests/fuzz/fuzz_hub_response.cpp) on its own. Every value that later names a path in the cache
// (the commit, the blob's etag) is checked here: a hostile or broken endpoint cannot write outside the cache.

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "hub/repo_id.h"

namespace vit::hub {

// The Hub could not be asked (no connection, a timeout, HTTP 5xx): the caller may fall back to the cache.
class HubUnreachable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws HubUnreachable for `url`, saying why ("Couldn't connect to server", "HTTP 503").
[[noreturn]] void throw_unreachable(const std::string& url, const std::string& why);

// One HTTP exchange's outcome.
struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercase names; the last value of a repeated header

  std::string header(const std::string& name) const;
  // One raw header line as libcurl hands it over ("Name: value\r\n"); a status line starts a new response (after a
  // redirect) and forgets the headers before it.
  void add_header_line(const std::string& line);
};

// What a file at a revision is: its commit, blob name, size and where to fetch it.
struct FileMetadata {
  std::string commit;  // 40 lowercase hex digits
  std::string etag;    // a plain file name (blobs/<etag>)
  int64_t size = -1;   // bytes; -1 when the Hub does not say
  std::string url;
};

// "scheme://host:port" of a URL, lowercase: the token goes only where the endpoint is.
std::string origin_of(const std::string& url);

// The metadata in the answer `r` to the HEAD of `url` for `file` of `id`, or std::nullopt when the repo does not
// have the file (404 EntryNotFound). Throws std::invalid_argument naming the repo for what the user must fix
// (gated, private or missing repo, missing revision, any other 4xx), HubUnreachable for 5xx, and
// std::runtime_error naming the repo for an answer that is not the Hub's (no or malformed X-Repo-Commit, ETag or
// size).
std::optional<FileMetadata> file_metadata_of(const Response& r, const RepoId& id, const std::string& file,
                                             const std::string& url, const std::string& endpoint);

}  // namespace vit::hub
