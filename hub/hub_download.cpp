#include "hub/hub_download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "hub/environment.h"
#include "hub/hf_cache.h"
#include "hub/hub_response.h"
#include "util/atomic_file.h"
#include "util/files.h"
#include "util/text.h"

namespace vit::hub {
namespace fs = std::filesystem;
namespace {

bool is_sha256(const std::string& text) { return is_lowercase_hex(text, 64); }

// The SHA-256 of a file, in lowercase hex.
std::string sha256_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + path.string() + "'");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(context.get(), buffer.data(), static_cast<size_t>(in.gcount()));
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(context.get(), digest.data(), &length);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

size_t collect_header(char* data, size_t size, size_t count, void* target) {
  static_cast<Response*>(target)->add_header_line(std::string(data, size * count));
  return size * count;
}

struct CurlHandle {
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  ~CurlHandle() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
  }
};

// Settings every request shares: timeouts so that a dead server never hangs `vit`, identity encoding (sizes are
// the files'), the token only for the endpoint's own origin.
void prepare(CurlHandle& h, const std::string& url, const HubSettings& settings, Response& response) {
  if (!h.curl) throw std::runtime_error("cannot start libcurl");
  curl_easy_setopt(h.curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);  // abort after 60 s without a byte
  curl_easy_setopt(h.curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(h.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.curl, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(h.curl, CURLOPT_HEADERDATA, &response);
  h.headers = curl_slist_append(h.headers, "Accept-Encoding: identity");
  h.headers = curl_slist_append(h.headers, "User-Agent: vit (huggingface_hub-compatible)");
  if (!settings.token.empty() && origin_of(url) == origin_of(settings.endpoint))
    h.headers = curl_slist_append(h.headers, ("Authorization: Bearer " + settings.token).c_str());
  curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, h.headers);
}

// A HEAD that follows only relative redirects (same host, token kept), as huggingface_hub's
// get_hf_file_metadata; an absolute redirect (the CDN of an LFS file) ends it, its headers being the metadata.
Response head(std::string url, const HubSettings& settings) {
  for (int redirects = 0; redirects < 10; ++redirects) {
    Response response;
    CurlHandle h;
    prepare(h, url, settings, response);
    curl_easy_setopt(h.curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h.curl, CURLOPT_TIMEOUT, 30L);
    const CURLcode code = curl_easy_perform(h.curl);
    if (code != CURLE_OK) throw_unreachable(url, curl_easy_strerror(code));
    curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &response.status);
    const std::string location = response.header("location");
    if (response.status >= 300 && response.status < 400 && location.rfind('/', 0) == 0) {
      url = origin_of(url) + location;
      continue;
    }
    return response;
  }
  throw_unreachable(url, "too many redirects");
}

// The metadata of one file, or std::nullopt when the repo does not have it (404 EntryNotFound).
std::optional<FileMetadata> file_metadata(const RepoId& id, const std::string& file, const HubSettings& settings) {
  const std::string url = settings.endpoint + "/" + id.id() + "/resolve/" + id.revision + "/" + file;
  return file_metadata_of(head(url, settings), id, file, url, settings.endpoint);
}

// A progress line on stderr: bytes, rate, time left.
struct Progress {
  std::string file;
  bool enabled;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last;
};

int report_progress(void* target, curl_off_t total, curl_off_t done, curl_off_t, curl_off_t) {
  auto* p = static_cast<Progress*>(target);
  const auto now = std::chrono::steady_clock::now();
  if (!p->enabled || now - p->last < std::chrono::milliseconds(200) || total <= 0) return 0;
  p->last = now;
  const double seconds = std::chrono::duration<double>(now - p->start).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  const double left = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
  std::fprintf(stderr, "\rdownloading %s  %.1f / %.1f MB  %.1f MB/s  %.0f s left   ", p->file.c_str(),
               static_cast<double>(done) / 1e6, static_cast<double>(total) / 1e6, rate / 1e6, left);
  return 0;
}

size_t write_to_file(char* data, size_t size, size_t count, void* target) {
  return std::fwrite(data, size, count, static_cast<std::FILE*>(target)) * size;
}

// GET `url` into `path` (following redirects; the token only for the endpoint's origin).
void fetch(const std::string& url, const fs::path& path, const std::string& file, const HubSettings& settings) {
  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (!out) throw std::runtime_error("cannot write '" + path.string() + "'");
  Response response;
  CurlHandle h;
  prepare(h, url, settings, response);
  Progress progress{file, settings.progress, std::chrono::steady_clock::now(), {}};
  curl_easy_setopt(h.curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h.curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h.curl, CURLOPT_WRITEFUNCTION, write_to_file);
  curl_easy_setopt(h.curl, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(h.curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h.curl, CURLOPT_XFERINFOFUNCTION, report_progress);
  curl_easy_setopt(h.curl, CURLOPT_XFERINFODATA, &progress);
  const CURLcode code = curl_easy_perform(h.curl);
  const bool written = std::fclose(out) == 0;
  if (settings.progress) std::fprintf(stderr, "\r\033[K");
  curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &response.status);
  if (code == CURLE_PARTIAL_FILE || code == CURLE_RECV_ERROR || code == CURLE_OPERATION_TIMEDOUT)
    throw std::runtime_error("download of '" + file + "' from " + url + " is incomplete (" + curl_easy_strerror(code) +
                             ")");
  if (code != CURLE_OK) throw_unreachable(url, curl_easy_strerror(code));
  if (response.status >= 500) throw_unreachable(url, "HTTP " + std::to_string(response.status));
  if (response.status != 200)
    throw std::runtime_error("download of '" + file + "' from " + url + ": HTTP " + std::to_string(response.status));
  if (!written) throw std::runtime_error("cannot write '" + path.string() + "'");
}

// An exclusive lock on a file, held while the object lives (flock: released if the process dies).
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) throw std::runtime_error("cannot lock '" + path.string() + "'");
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// A blob that is what the Hub says: its size, and for LFS files (SHA-256 etags) its hash.
bool blob_is_good(const fs::path& blob, const FileMetadata& m) {
  std::error_code error;
  if (!fs::is_regular_file(blob, error)) return false;
  if (m.size >= 0 && static_cast<int64_t>(fs::file_size(blob, error)) != m.size) return false;
  return !is_sha256(m.etag) || sha256_of(blob) == m.etag;
}

// snapshots/<commit>/<file> -> ../../blobs/<etag> (relative, as huggingface_hub links them), replacing any old link.
void link_snapshot(const fs::path& repo, const FileMetadata& m, const std::string& file) {
  const fs::path pointer = repo / "snapshots" / m.commit / file;
  fs::create_directories(pointer.parent_path());
  fs::path target = fs::path("..") / "..";
  for (auto depth = std::count(file.begin(), file.end(), '/'); depth > 0; --depth) target /= "..";
  target /= fs::path("blobs") / m.etag;
  const fs::path temporary = pointer.string() + ".link.tmp";
  std::error_code error;
  fs::remove(temporary, error);
  fs::create_symlink(target, temporary);
  fs::rename(temporary, pointer);  // atomic: never a dangling half-made link
}

// Brings one file into the cache; returns false when the repo does not have it.
bool download_file(const fs::path& cache, const RepoId& id, const std::string& file, const HubSettings& settings,
                   std::string& commit) {
  const auto m = file_metadata(id, file, settings);
  const fs::path repo = repo_folder(cache, id);
  if (!m) return false;
  if (!commit.empty() && m->commit != commit)
    throw std::runtime_error("Hugging Face Hub: '" + id.id() + "' changed commit while downloading; run again");
  commit = m->commit;
  const fs::path blob = repo / "blobs" / m->etag;
  const fs::path pointer = repo / "snapshots" / m->commit / file;
  std::error_code error;
  const FileLock lock(cache / ".locks" / repo.filename() / (m->etag + ".lock"));
  if (blob_is_good(blob, *m)) {
    if (!fs::exists(pointer, error)) link_snapshot(repo, *m, file);
    return true;
  }
  fs::create_directories(blob.parent_path());
  const fs::path incomplete = blob.string() + ".incomplete";
  spdlog::info("downloading {} of {} ({:.1f} MB)", file, id.id(),
               static_cast<double>(std::max<int64_t>(m->size, 0)) / 1e6);
  try {
    fetch(m->url, incomplete, file, settings);
    const auto size = static_cast<int64_t>(fs::file_size(incomplete));
    if (m->size >= 0 && size != m->size)
      throw std::runtime_error("download of '" + file + "' of '" + id.id() + "' is incomplete: " +
                               std::to_string(size) + " of " + std::to_string(m->size) + " bytes");
    if (is_sha256(m->etag) && sha256_of(incomplete) != m->etag)
      throw std::runtime_error("download of '" + file + "' of '" + id.id() + "': its sha256 does not match the " +
                               "Hub's (" + m->etag + "); nothing was kept");
    sync_path(incomplete, O_RDONLY);
    fs::rename(incomplete, blob);
  } catch (...) {
    fs::remove(incomplete, error);
    throw;
  }
  link_snapshot(repo, *m, file);
  return true;
}

bool truthy(const std::string& value) {
  const std::string v = lowercase(trim(value));
  return v == "1" || v == "on" || v == "yes" || v == "true";
}

}  // namespace

HubSettings HubSettings::from_environment() {
  HubSettings s;
  if (!env("HF_ENDPOINT").empty()) s.endpoint = env("HF_ENDPOINT");
  while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
  s.offline = truthy(env("HF_HUB_OFFLINE"));
  s.token = env("HF_TOKEN");
  if (s.token.empty()) s.token = env("HUGGING_FACE_HUB_TOKEN");
  if (s.token.empty()) {
    fs::path file = env("HF_TOKEN_PATH");
    if (file.empty()) file = hf_home() / "token";
    std::ifstream in(file);
    std::getline(in, s.token);
    s.token = trim(s.token);
  }
  s.progress = ::isatty(STDERR_FILENO) != 0;
  return s;
}

fs::path download_model(const fs::path& cache, const RepoId& id, const HubSettings& settings) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!initialised) throw std::runtime_error("cannot start libcurl");
  std::string commit;
  download_file(cache, id, "config.json", settings, commit);
  if (commit.empty())
    throw std::invalid_argument("Hugging Face Hub: '" + id.id() + "' has no config.json at '" + id.revision +
                                "': not a timm or transformers model repo");
  if (!download_file(cache, id, "model.safetensors", settings, commit)) {
    if (file_metadata(id, "pytorch_model.bin", settings))
      throw std::invalid_argument("Hugging Face Hub: '" + id.id() + "' has only pickle weights (pytorch_model.bin); " +
                                  "vit reads safetensors (model.safetensors)");
    throw std::invalid_argument("Hugging Face Hub: '" + id.id() + "' has no model.safetensors at '" + id.revision +
                                "'");
  }
  const fs::path repo = repo_folder(cache, id);
  if (!download_file(cache, id, "preprocessor_config.json", settings, commit)) {
    // Remembered as huggingface_hub does, so that offline runs know the file does not exist.
    fs::create_directories(repo / ".no_exist" / commit);
    std::ofstream(repo / ".no_exist" / commit / "preprocessor_config.json");
  }
  if (id.revision != commit) {
    fs::create_directories(repo / "refs" / fs::path(id.revision).parent_path());
    write_file_atomically(repo / "refs" / id.revision, [&](std::ostream& out) { out << commit; });  // no newline
  }
  return repo / "snapshots" / commit;
}

}  // namespace vit::hub
