// ImageFolder scanning, validation folders and stratified splits.

#include <algorithm>
#include <set>

#include "data/image_folder.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::TempDir;

namespace vit::data {
namespace {

namespace fs = std::filesystem;

void touch(const fs::path& path) {
  fs::create_directories(path.parent_path());
  vit::test::write_bytes(path, "x");  // contents do not matter for scanning
}

std::set<std::string> names(const ImageFolder& folder) {
  std::set<std::string> out;
  for (const auto& s : folder.samples) out.insert(s.path.filename().string());
  return out;
}

}  // namespace

TEST_CASE("classes are sorted subfolders, images are found recursively, hidden entries skipped", "[folder]") {
  TempDir dir;
  touch(dir / "zebra/a.jpg");
  touch(dir / "zebra/deep/er/b.PNG");      // nested, upper-case extension
  touch(dir / "zebra/.hidden.jpg");        // hidden file
  touch(dir / "zebra/.cache/c.jpg");       // inside a hidden folder
  touch(dir / "zebra/notes.txt");          // not an image
  touch(dir / "äpfel/ünïcödé näme.webp");  // non-ASCII names
  touch(dir / "äpfel/odd name (1).JPEG");
  touch(dir / "äpfel/x.tif");
  touch(dir / ".git/objects/d.png");  // a hidden class folder
  const auto folder = scan_image_folder(dir.path());
  CHECK(folder.classes == std::vector<std::string>{"zebra", "äpfel"});  // byte order: 'z' < 0xC3
  CHECK(names(folder) == std::set<std::string>{"a.jpg", "b.PNG", "ünïcödé näme.webp", "odd name (1).JPEG", "x.tif"});
  for (const auto& s : folder.samples) {
    CHECK(s.label == (s.path.string().find("zebra") != std::string::npos ? 0 : 1));
  }
  CHECK(std::is_sorted(folder.samples.begin(), folder.samples.end(),
                       [](const Sample& a, const Sample& b) { return a.label < b.label; }));
}

TEST_CASE("image folder errors say what is wrong and where", "[folder]") {
  TempDir dir;
  CHECK_THROWS_WITH(scan_image_folder(dir / "nope"), Contains("nope' does not exist or is not a folder"));
  CHECK_THROWS_WITH(scan_image_folder(dir.path()), Contains("has no class subfolders"));
  touch(dir / "cat/1.jpg");
  CHECK_THROWS_WITH(scan_image_folder(dir.path()), Contains("has only one class ('cat')"));
  touch(dir / "dog/readme.txt");
  CHECK_THROWS_WITH(scan_image_folder(dir.path()), Contains("class 'dog'") && Contains("has no images (.jpg .jpeg"));
}

TEST_CASE("validation classes are matched to the training classes by name", "[folder]") {
  TempDir dir;
  touch(dir / "val/dog/1.jpg");
  const auto val = scan_image_folder(dir / "val", {"cat", "dog", "eel"});
  REQUIRE(val.samples.size() == 1);
  CHECK(val.samples[0].label == 1);
  CHECK(val.classes.size() == 3);
  touch(dir / "val/fox/1.jpg");
  CHECK_THROWS_WITH(scan_image_folder(dir / "val", {"cat", "dog"}),
                    Contains("class folder 'fox'") && Contains("is not one of the model's/training classes"));
}

TEST_CASE("stratified splits hold out a fraction of every class, reproducibly", "[folder]") {
  ImageFolder folder{"root", {"a", "b"}, {}};
  for (int i = 0; i < 20; ++i) folder.samples.push_back({"a" + std::to_string(i) + ".png", 0});
  for (int i = 0; i < 3; ++i) folder.samples.push_back({"b" + std::to_string(i) + ".png", 1});
  const auto [train, val] = split_stratified(folder, 0.25, 7);
  auto count = [](const ImageFolder& f, int64_t label) {
    return std::count_if(f.samples.begin(), f.samples.end(), [&](const Sample& s) { return s.label == label; });
  };
  CHECK(count(val, 0) == 5);
  CHECK(count(val, 1) == 1);  // round(0.75) = 1
  CHECK(count(train, 0) == 15);
  CHECK(count(train, 1) == 2);
  std::set<std::string> all = names(train);
  for (const auto& n : names(val)) CHECK(all.insert(n).second);  // disjoint
  CHECK(all.size() == 23);
  CHECK(names(split_stratified(folder, 0.25, 7).second) == names(val));
  CHECK(names(split_stratified(folder, 0.25, 8).second) != names(val));
  CHECK_THROWS_WITH(split_stratified(folder, 1.0, 7), Contains("validation split must be a fraction in (0, 1)"));
}

TEST_CASE("open_dataset finds train/ and val/, an explicit --val, or a split", "[folder]") {
  TempDir dir;
  for (const char* c : {"cat", "dog"}) {
    for (int i = 0; i < 4; ++i) touch(dir / "data/train" / c / (std::to_string(i) + ".png"));
    touch(dir / "data/val" / c / "v.png");
    touch(dir / "other" / c / "o.png");
  }
  const auto standard = open_dataset(dir / "data", std::nullopt, 0.0, 1);
  CHECK(standard.train.samples.size() == 8);
  REQUIRE(standard.val.has_value());
  CHECK(standard.val->samples.size() == 2);

  const auto explicit_val = open_dataset(dir / "data", dir / "other", 0.0, 1);
  CHECK(names(*explicit_val.val) == std::set<std::string>{"o.png"});

  const auto flat = open_dataset(dir / "data/train", std::nullopt, 0.5, 1);
  CHECK(flat.train.samples.size() == 4);
  CHECK(flat.val->samples.size() == 4);
  CHECK_FALSE(open_dataset(dir / "data/train", std::nullopt, 0.0, 1).val.has_value());
  CHECK_THROWS_WITH(open_dataset(dir / "data", std::nullopt, 0.2, 1),
                    Contains("cannot be combined with a validation folder"));
}

}  // namespace vit::data
