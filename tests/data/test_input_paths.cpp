// Expansion of `vit classify` inputs: files, folders, standard input, in the order given.

#include <sstream>

#include "data/input_paths.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::TempDir;

namespace vit::data {
namespace {

namespace fs = std::filesystem;

std::vector<InputPath> all(InputPaths& inputs) {
  std::vector<InputPath> out;
  while (auto input = inputs.next()) out.push_back(*input);
  return out;
}

std::vector<std::string> names(const std::vector<InputPath>& inputs) {
  std::vector<std::string> out;
  for (const auto& input : inputs) out.push_back(input.path.filename().string());
  return out;
}

}  // namespace

TEST_CASE("inputs: files as given, folders as their images sorted, stdin lines in place of '-'", "[input]") {
  TempDir dir;
  for (const char* name : {"b.png", "a.JPG", "sub/c.webp", ".hidden.png", "notes.txt", ".cache/d.png"}) {
    fs::create_directories((dir.path() / name).parent_path());
    vit::test::write_bytes(dir.path() / name, "x");
  }
  std::istringstream stdin_lines("one.png\r\n\n" + (dir.path() / "sub").string() + "\ntwo.png\n");
  InputPaths inputs({"first.bmp", dir.path().string(), "-", "last.png"}, stdin_lines);
  const auto got = all(inputs);
  // The folder gives its images (any letter case, recursively, not hidden, not other files), sorted by path.
  CHECK(names(got) ==
        std::vector<std::string>{"first.bmp", "a.JPG", "b.png", "c.webp", "one.png", "c.webp", "two.png", "last.png"});
  for (const auto& input : got) CHECK(input.error.empty());
}

TEST_CASE("inputs: a missing file is passed on for the decoder to report, an image-less folder is an error",
          "[input]") {
  TempDir dir;
  fs::create_directories(dir.path() / "empty");
  std::istringstream no_input;
  InputPaths inputs({(dir.path() / "missing.png").string(), (dir.path() / "empty").string()}, no_input);
  const auto got = all(inputs);
  REQUIRE(got.size() == 2);
  CHECK(got[0].error.empty());
  CHECK_THAT(got[1].error, Contains("folder has no images"));
  CHECK_THAT(got[1].error, Contains(".webp"));
}

TEST_CASE("inputs: '-' twice reads standard input once, nothing given yields nothing", "[input]") {
  std::istringstream lines("x.png\n");
  InputPaths twice({"-", "-"}, lines);
  CHECK(names(all(twice)) == std::vector<std::string>{"x.png"});
  std::istringstream empty;
  InputPaths none({}, empty);
  CHECK_FALSE(none.next().has_value());
}

}  // namespace vit::data
