// Hub repo ids and the Hugging Face cache as huggingface_hub lays it out (written here file by file, as Python
// leaves it: blobs, relative symlinks in snapshots, refs without a newline).

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "hub/hf_cache.h"
#include "hub/hub_response.h"
#include "hub/model_argument.h"
#include "hub/repo_id.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/temp_dir.h"
#include "util/text.h"

using vit::test::Contains;
using vit::test::error_of;
using vit::test::TempDir;

namespace vit::hub {
namespace {

// Sets an environment variable for one test, restoring its previous value (or absence) afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

// One repo as huggingface_hub leaves it after downloading `files` at kCommit for the ref "main".
void write_cached_repo(const std::filesystem::path& cache, const std::string& folder,
                       const std::vector<std::string>& files) {
  const auto repo = cache / folder;
  std::filesystem::create_directories(repo / "blobs");
  std::filesystem::create_directories(repo / "refs");
  std::filesystem::create_directories(repo / "snapshots" / kCommit);
  std::ofstream(repo / "refs" / "main") << kCommit;  // no newline, as huggingface_hub writes it
  int blob = 0;
  for (const auto& file : files) {
    const std::string etag = "etag" + std::to_string(blob++);
    std::ofstream(repo / "blobs" / etag) << "contents of " << file;
    std::filesystem::create_symlink("../../blobs/" + etag, repo / "snapshots" / kCommit / file);
  }
}

}  // namespace

TEST_CASE("Hub repo ids: the org/name shape with optional prefix and revision, validated as huggingface_hub does",
          "[hub]") {
  const auto id = parse_repo_id("timm/vit_base_patch16_224.augreg2_in21k_ft_in1k");
  REQUIRE(id.has_value());
  CHECK(id->org == "timm");
  CHECK(id->name == "vit_base_patch16_224.augreg2_in21k_ft_in1k");
  CHECK(id->revision == "main");
  const auto pinned = parse_repo_id("hf-hub:timm/deit3_small_patch16_224.fb_in1k@v1.0");
  REQUIRE(pinned.has_value());
  CHECK(pinned->id() == "timm/deit3_small_patch16_224.fb_in1k");
  CHECK(pinned->revision == "v1.0");
  CHECK(parse_repo_id("hf_hub:google/vit-base-patch16-224")->org == "google");

  // Not the shape of an id: a path or a preset name, for the caller to handle.
  for (const char* other :
       {"vit_base_patch16_224", "runs/a/best.safetensors", "runs/best.safetensors", "/abs/model", "./m/x", "~/m/x"}) {
    INFO(other);
    CHECK_FALSE(parse_repo_id(other).has_value());
  }
  // The shape, but not a valid id: each rule named.
  CHECK_THAT(error_of([] { parse_repo_id("timm/vit..base"); }), Contains("may not contain '--' or '..'"));
  CHECK_THAT(error_of([] { parse_repo_id("timm/vit base"); }), Contains("only letters, digits, '-', '_' and '.'"));
  CHECK_THAT(error_of([] { parse_repo_id("timm/-vit"); }), Contains("may not start or end with '-' or '.'"));
  CHECK_THAT(error_of([] { parse_repo_id("timm/" + std::string(97, 'a')); }), Contains("longer than 96"));
  CHECK_THAT(error_of([] { parse_repo_id("hf-hub:timm/a/b"); }), Contains("exactly one '/'"));
  CHECK_THAT(error_of([] { parse_repo_id("hf-hub:vit"); }), Contains("expected org/name"));
  CHECK_THAT(error_of([] { parse_repo_id("timm/vit@../../etc"); }), Contains("the revision after '@'"));
}

TEST_CASE("the cache folder follows huggingface_hub's environment variables", "[hub]") {
  ScopedEnv home("HOME", "/home/u");
  ScopedEnv xdg("XDG_CACHE_HOME", "");
  ScopedEnv hf_home("HF_HOME", "");
  ScopedEnv legacy("HUGGINGFACE_HUB_CACHE", "");
  ScopedEnv cache("HF_HUB_CACHE", "");
  CHECK(hub_cache_dir() == "/home/u/.cache/huggingface/hub");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  CHECK(hub_cache_dir() == "/xdg/huggingface/hub");
  setenv("HF_HOME", "~/hf", 1);
  CHECK(hub_cache_dir() == "/home/u/hf/hub");
  setenv("HUGGINGFACE_HUB_CACHE", "/legacy", 1);
  CHECK(hub_cache_dir() == "/legacy");
  setenv("HF_HUB_CACHE", "/new", 1);
  CHECK(hub_cache_dir() == "/new");
}

TEST_CASE("a model huggingface_hub downloaded is found in its snapshot, pickle-only and missing ones are errors",
          "[hub]") {
  TempDir cache;
  ScopedEnv env("HF_HUB_CACHE", cache.path().string());
  ScopedEnv offline("HF_HUB_OFFLINE", "1");  // the cache only: tests never reach the internet
  write_cached_repo(cache.path(), "models--timm--vit_tiny_patch16_224.augreg_in21k",
                    {"config.json", "model.safetensors"});
  const RepoId id = *parse_repo_id("timm/vit_tiny_patch16_224.augreg_in21k");
  CHECK(cached_commit(cache.path(), id) == kCommit);
  const auto folder = cached_model(cache.path(), id);
  REQUIRE(folder.has_value());
  CHECK(*folder == cache / "models--timm--vit_tiny_patch16_224.augreg_in21k" / "snapshots" / kCommit);
  std::ifstream linked(*folder / "config.json");  // through the relative symlink into blobs/
  std::string text;
  std::getline(linked, text);
  CHECK(text == "contents of config.json");
  // By commit too; an unknown branch is not in the cache.
  CHECK(cached_model(cache.path(), *parse_repo_id("timm/vit_tiny_patch16_224.augreg_in21k@" + kCommit)).has_value());
  CHECK_FALSE(cached_model(cache.path(), *parse_repo_id("timm/vit_tiny_patch16_224.augreg_in21k@dev")).has_value());

  // What a model argument becomes: the snapshot folder; a local path always wins; other names pass through.
  CHECK(resolve_model_argument("hf-hub:timm/vit_tiny_patch16_224.augreg_in21k@main") == folder->string());
  CHECK(resolve_model_argument("vit_base_patch16_224") == "vit_base_patch16_224");
  std::filesystem::create_directories(cache / "timm" / "vit_tiny_patch16_224.augreg_in21k");
  {
    struct Cwd {
      std::filesystem::path old = std::filesystem::current_path();
      ~Cwd() { std::filesystem::current_path(old); }
    } restore;
    std::filesystem::current_path(cache.path());
    CHECK(resolve_model_argument("timm/vit_tiny_patch16_224.augreg_in21k") == "timm/vit_tiny_patch16_224.augreg_in21k");
  }

  write_cached_repo(cache.path(), "models--google--vit-old", {"config.json", "pytorch_model.bin"});
  CHECK_THAT(error_of([] { resolve_model_argument("google/vit-old"); }),
             Contains("'google/vit-old' has only pickle weights (pytorch_model.bin)"));
  CHECK_THAT(error_of([] { resolve_model_argument("google/vit-missing"); }),
             Contains("'google/vit-missing' is neither an existing file or folder nor a model in the Hugging Face "
                      "cache (" +
                      cache.path().string()));
}

// The answer to a HEAD, as libcurl hands its header lines over.
Response answer(long status, const std::vector<std::string>& lines) {
  Response r;
  r.status = status;
  for (const auto& line : lines) r.add_header_line(line + "\r\n");
  return r;
}

TEST_CASE("the Hub's answer for a file: commit, blob, size and where to fetch it, and what is not the Hub's is refused",
          "[hub]") {
  const RepoId id = *parse_repo_id("timm/tiny");
  const std::string url = "http://127.0.0.1:1/timm/tiny/resolve/main/model.safetensors";
  const std::string sha256(64, 'a');
  auto metadata = [&](const Response& r) { return file_metadata_of(r, id, "model.safetensors", url, "http://hub"); };

  // An LFS file: a redirect to the CDN, whose headers are the metadata (the last response's, after "HTTP/").
  const auto lfs =
      metadata(answer(302, {"HTTP/1.1 307 Temporary Redirect", "Location: /elsewhere", "HTTP/1.1 302 Found",
                            "x-repo-commit: " + kCommit, "X-Linked-Etag: \"" + sha256 + "\"", "ETag: W/\"other\"",
                            "X-Linked-Size:  1234 ", "Content-Length: 5", "Location: https://cdn/x"}));
  REQUIRE(lfs.has_value());
  CHECK(lfs->commit == kCommit);
  CHECK(lfs->etag == sha256);
  CHECK(lfs->size == 1234);
  CHECK(lfs->url == "https://cdn/x");
  // A small file: fetched where it was asked for.
  const auto small = metadata(answer(200, {"X-Repo-Commit: " + kCommit, "ETag: W/\"abc\"", "Content-Length: 7"}));
  REQUIRE(small.has_value());
  CHECK(small->etag == "abc");
  CHECK(small->size == 7);
  CHECK(small->url == url);
  CHECK_FALSE(metadata(answer(404, {"X-Error-Code: EntryNotFound"})).has_value());

  // The user's errors, by status and error code.
  CHECK_THAT(error_of([&] { metadata(answer(401, {})); }),
             Contains("'timm/tiny' is gated or needs a token (HTTP 401)"));
  CHECK_THAT(error_of([&] { metadata(answer(404, {"X-Error-Code: RepoNotFound"})); }),
             Contains("repo 'timm/tiny' not found"));
  CHECK_THROWS_AS(metadata(answer(503, {})), HubUnreachable);

  // Values that would name a path in the cache, or a size, that the Hub never sends: refused, naming the repo.
  const std::string good_etag = "ETag: \"" + sha256 + "\"";
  for (const auto& [header_lines, expected] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{good_etag}, "lacks X-Repo-Commit, a 40-digit commit hash"},
           {{"X-Repo-Commit: ../../../../tmp/evil", good_etag}, "lacks X-Repo-Commit"},
           {{"X-Repo-Commit: " + std::string(40, 'A'), good_etag}, "lacks X-Repo-Commit"},
           {{"X-Repo-Commit: " + kCommit}, "lacks an ETag that can name a file"},
           {{"X-Repo-Commit: " + kCommit, "ETag: \"..\""}, "lacks an ETag that can name a file"},
           {{"X-Repo-Commit: " + kCommit, "ETag: ../../x"}, "lacks an ETag that can name a file"},
           {{"X-Repo-Commit: " + kCommit, "ETag: a b"}, "lacks an ETag that can name a file"},
           {{"X-Repo-Commit: " + kCommit, good_etag, "X-Linked-Size: 12abc"}, "gives the size '12abc'"},
           {{"X-Repo-Commit: " + kCommit, good_etag, "Content-Length: -1"}, "gives the size '-1'"},
           {{"X-Repo-Commit: " + kCommit, good_etag, "Content-Length: 99999999999999999999"}, "gives the size"},
       }) {
    const auto& lines = header_lines;  // clang 14 cannot capture a structured binding in a lambda
    INFO(join(lines, " | "));
    const std::string error = error_of([&] { metadata(answer(200, lines)); });
    CHECK_THAT(error, Contains("the answer for 'model.safetensors' of 'timm/tiny' " + expected));
    CHECK_THAT(error, Contains("is HF_ENDPOINT (http://hub) a Hugging Face Hub?"));
  }
}

TEST_CASE("the token goes only to the endpoint's origin: scheme, host and port, in any case", "[hub]") {
  CHECK(origin_of("https://HuggingFace.co/timm/x/resolve/main/config.json") == "https://huggingface.co");
  CHECK(origin_of("http://127.0.0.1:8080") == "http://127.0.0.1:8080");
  CHECK(origin_of("http://127.0.0.1:8080/a") != origin_of("http://127.0.0.1:8081/a"));
  CHECK(origin_of("no-scheme/path").empty());
}

}  // namespace vit::hub
