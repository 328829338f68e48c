#include "hub/hub_response.h"

#include <algorithm>

#include "hub/hf_cache.h"
#include "util/text.h"

namespace vit::hub {
namespace {

// W/"abc" or "abc" -> abc, as huggingface_hub normalises etags.
std::string normalize_etag(std::string etag) {
  etag = trim(etag);
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

// An etag becomes blobs/<etag>, blobs/<etag>.incomplete and .locks/…/<etag>.lock: it must be one plain file name
// (the Hub's are 40 or 64 hex digits), never "..", a path or something a file system refuses.
bool is_safe_blob_name(const std::string& etag) {
  return !etag.empty() && etag.size() <= 200 && etag != "." && etag != ".." &&
         std::all_of(etag.begin(), etag.end(), [](unsigned char c) { return c > ' ' && c != '/' && c != 0x7f; });
}

// The user's errors by status and X-Error-Code, each naming the repo and what to do.
[[noreturn]] void refuse(const RepoId& id, const std::string& file, const Response& r) {
  const std::string code = r.header("x-error-code");
  if (r.status == 401 || r.status == 403 || code == "GatedRepo")
    throw std::invalid_argument("Hugging Face Hub: '" + id.id() + "' is gated or needs a token (HTTP " +
                                std::to_string(r.status) +
                                "): accept its terms on huggingface.co and set HF_TOKEN (or log in with "
                                "`huggingface-cli login`)");
  if (code == "RepoNotFound")
    throw std::invalid_argument("Hugging Face Hub: repo '" + id.id() +
                                "' not found (nor a local file or folder of that name; a private repo needs HF_TOKEN "
                                "set to a token that may read it)");
  if (code == "RevisionNotFound")
    throw std::invalid_argument("Hugging Face Hub: revision '" + id.revision + "' not found in '" + id.id() + "'");
  throw std::invalid_argument("Hugging Face Hub: '" + file + "' of '" + id.id() + "' at '" + id.revision + "': HTTP " +
                              std::to_string(r.status));
}

}  // namespace

void throw_unreachable(const std::string& url, const std::string& why) {
  throw HubUnreachable("Hugging Face Hub unreachable (" + why + " for " + url + ")");
}

std::string Response::header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

void Response::add_header_line(const std::string& line) {
  if (line.rfind("HTTP/", 0) == 0) headers.clear();
  const auto colon = line.find(':');
  if (colon != std::string::npos) headers[lowercase(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
}

std::string origin_of(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  const auto path = url.find('/', scheme + 3);
  return lowercase(url.substr(0, path));
}

std::optional<FileMetadata> file_metadata_of(const Response& r, const RepoId& id, const std::string& file,
                                             const std::string& url, const std::string& endpoint) {
  if (r.status >= 500) throw_unreachable(url, "HTTP " + std::to_string(r.status));
  if (r.status == 404 && r.header("x-error-code") == "EntryNotFound") return std::nullopt;
  if (r.status >= 400) refuse(id, file, r);
  auto not_the_hub = [&](const std::string& what) {
    return std::runtime_error("Hugging Face Hub: the answer for '" + file + "' of '" + id.id() + "' " + what +
                              ": is HF_ENDPOINT (" + endpoint + ") a Hugging Face Hub?");
  };
  FileMetadata m;
  m.commit = r.header("x-repo-commit");
  if (!is_commit_hash(m.commit)) throw not_the_hub("lacks X-Repo-Commit, a 40-digit commit hash");
  m.etag = normalize_etag(r.header("x-linked-etag").empty() ? r.header("etag") : r.header("x-linked-etag"));
  if (!is_safe_blob_name(m.etag)) throw not_the_hub("lacks an ETag that can name a file");
  const std::string size = r.header("x-linked-size").empty() ? r.header("content-length") : r.header("x-linked-size");
  if (!size.empty()) {
    const auto bytes = parse_integer(size);
    if (!bytes || *bytes < 0) throw not_the_hub("gives the size '" + size + "', not a number of bytes");
    m.size = *bytes;
  }
  const std::string location = r.header("location");
  m.url = r.status >= 300 && r.status < 400 && !location.empty() ? location : url;
  return m;
}

}  // namespace vit::hub
