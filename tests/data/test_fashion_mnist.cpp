// Reading IDX files and converting Fashion-MNIST into an ImageFolder tree, on tiny IDX files the tests write
// themselves (the real dataset is 30 MB compressed and 70,000 files converted: too much for a unit test).

#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <stdexcept>

#include <opencv2/imgcodecs.hpp>

#include "data/fashion_mnist.h"
#include "data/idx_file.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::list_names;
using vit::test::read_bytes;
using vit::test::TempDir;
using vit::test::write_bytes;

namespace vit::data {
namespace {

namespace fs = std::filesystem;

std::string big_endian(uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16), static_cast<char>(value >> 8),
          static_cast<char>(value)};
}

// A different value at every pixel of every image, so that a swapped image, row or column shows.
uint8_t pixel(int64_t image, int64_t row, int64_t col) {
  return static_cast<uint8_t>(image * 37 + row * 11 + col * 3 + 1);
}

std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols) {
  std::string bytes = big_endian(0x803) + big_endian(count) + big_endian(rows) + big_endian(cols);
  for (uint32_t i = 0; i < count; ++i)
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c) bytes += static_cast<char>(pixel(i, r, c));
  return bytes;
}

std::string idx_labels(const std::vector<uint8_t>& labels) {
  return big_endian(0x801) + big_endian(static_cast<uint32_t>(labels.size())) +
         std::string(labels.begin(), labels.end());
}

std::string gzip(const std::string& plain) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&stream, plain.size()) + 32, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  stream.avail_in = static_cast<uInt>(plain.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// 12 train images of 4 rows x 5 columns, every class at least once, and 5 val images.
const std::vector<uint8_t> kTrainLabels{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 0};
const std::vector<uint8_t> kValLabels{9, 0, 0, 4, 1};

// A source folder as the Debian package has it (gzipped), except that the val files are plain, as other
// distributions ship them.
void write_source(const fs::path& dir) {
  fs::create_directories(dir);
  write_bytes(dir / "train-images-idx3-ubyte.gz", gzip(idx_images(12, 4, 5)));
  write_bytes(dir / "train-labels-idx1-ubyte.gz", gzip(idx_labels(kTrainLabels)));
  write_bytes(dir / "t10k-images-idx3-ubyte", idx_images(5, 4, 5));
  write_bytes(dir / "t10k-labels-idx1-ubyte", idx_labels(kValLabels));
}

std::vector<std::string> sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

// The PNG's folder must name its label and its pixels must be the IDX image's.
void check_split(const fs::path& split_dir, const std::vector<uint8_t>& labels) {
  std::vector<std::string> folders;
  for (const auto& name : fashion_mnist_classes()) folders.push_back(class_folder_name(name));
  CHECK(sorted(list_names(split_dir)) == sorted(folders));
  size_t files = 0;
  for (const auto& folder : folders) files += list_names(split_dir / folder).size();
  CHECK(files == labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string digits = std::to_string(i);
    const fs::path png = split_dir / folders[labels[i]] / (std::string(5 - digits.size(), '0') + digits + ".png");
    INFO(png.string());
    const cv::Mat image = cv::imread(png.string(), cv::IMREAD_UNCHANGED);
    REQUIRE(image.type() == CV_8UC1);
    REQUIRE(image.size() == cv::Size(5, 4));
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 5; ++c) CHECK(image.at<uint8_t>(r, c) == pixel(static_cast<int64_t>(i), r, c));
  }
}

// Leftover temporary folders beside OUT (".out.partial-...").
std::vector<std::string> partials_beside(const fs::path& out) {
  std::vector<std::string> found;
  for (const auto& name : list_names(out.parent_path()))
    if (name.find(".partial-") != std::string::npos) found.push_back(name);
  return found;
}

pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

}  // namespace

TEST_CASE("IDX images and labels read back exactly, gzipped or plain, whatever the file name", "[idx]") {
  TempDir dir;
  write_bytes(dir / "plain", idx_images(12, 4, 5));
  write_bytes(dir / "zipped.gz", gzip(idx_images(12, 4, 5)));
  write_bytes(dir / "zipped-without-suffix", gzip(idx_images(12, 4, 5)));
  write_bytes(dir / "plain-named.gz", idx_images(12, 4, 5));
  for (const char* name : {"plain", "zipped.gz", "zipped-without-suffix", "plain-named.gz"}) {
    INFO(name);
    const IdxImages images = read_idx_images(dir / name);
    CHECK(images.count == 12);
    CHECK(images.rows == 4);
    CHECK(images.cols == 5);
    REQUIRE(images.pixels.size() == 12 * 4 * 5);
    for (int64_t i = 0; i < 12; ++i)
      for (int64_t r = 0; r < 4; ++r)
        for (int64_t c = 0; c < 5; ++c) CHECK(images.pixels[(i * 4 + r) * 5 + c] == pixel(i, r, c));
  }
  write_bytes(dir / "labels.gz", gzip(idx_labels(kTrainLabels)));
  write_bytes(dir / "labels", idx_labels(kTrainLabels));
  CHECK(read_idx_labels(dir / "labels.gz") == kTrainLabels);
  CHECK(read_idx_labels(dir / "labels") == kTrainLabels);
}

TEST_CASE("a gzip file of several concatenated members is read whole, as gzip itself reads it", "[idx]") {
  TempDir dir;
  // The last member's size (the reader's first guess at the output size) is 10 bytes: the output must grow.
  const std::string plain = idx_images(100, 28, 28);
  write_bytes(dir / "two-members.gz", gzip(plain.substr(0, plain.size() - 10)) + gzip(plain.substr(plain.size() - 10)));
  const IdxImages images = read_idx_images(dir / "two-members.gz");
  CHECK(images.count == 100);
  REQUIRE(images.pixels.size() == 100 * 28 * 28);
  CHECK(std::string(images.pixels.begin(), images.pixels.end()) == plain.substr(16));
}

TEST_CASE("an empty IDX file (zero images) is valid", "[idx]") {
  TempDir dir;
  write_bytes(dir / "none", idx_images(0, 28, 28));
  const IdxImages images = read_idx_images(dir / "none");
  CHECK(images.count == 0);
  CHECK(images.rows == 28);
  CHECK(images.pixels.empty());
}

TEST_CASE("a missing IDX file is an error naming it", "[idx][errors]") {
  TempDir dir;
  const std::string path = (dir / "nothing.gz").string();
  CHECK_THROWS_WITH(read_idx_images(dir / "nothing.gz"), Contains("'" + path + "': no such file"));
  CHECK_THROWS_WITH(read_idx_labels(dir / "nothing.gz"), Contains("'" + path + "': no such file"));
  CHECK_THROWS_WITH(read_idx_labels(dir.path()), Contains("not a regular file"));
}

TEST_CASE("a wrong magic number is an error giving the expected and the found one in hex", "[idx][errors]") {
  TempDir dir;
  write_bytes(dir / "labels.gz", gzip(idx_labels(kTrainLabels)));
  write_bytes(dir / "images", idx_images(2, 2, 2));
  write_bytes(dir / "text", "hello, world\n");
  CHECK_THROWS_WITH(read_idx_images(dir / "labels.gz"),
                    Contains("labels.gz': wrong magic number: expected 0x00000803") &&
                        Contains("found 0x00000801 (an IDX label file)"));
  CHECK_THROWS_WITH(read_idx_labels(dir / "images"),
                    Contains("images': wrong magic number: expected 0x00000801") && Contains("found 0x00000803"));
  CHECK_THROWS_WITH(read_idx_labels(dir / "text"), Contains("found 0x68656C6C (not an IDX file)"));
}

TEST_CASE("a truncated payload or header is an error naming the file and the sizes", "[idx][errors]") {
  TempDir dir;
  const std::string images = idx_images(12, 4, 5);
  write_bytes(dir / "short.gz", gzip(images.substr(0, images.size() - 1)));
  CHECK_THROWS_WITH(read_idx_images(dir / "short.gz"),
                    Contains("short.gz': truncated: the header says 12 images of 4x5 (240 bytes) but only 239 bytes"));
  const std::string labels = idx_labels(kTrainLabels);
  write_bytes(dir / "short-labels", labels.substr(0, labels.size() - 2));
  CHECK_THROWS_WITH(read_idx_labels(dir / "short-labels"),
                    Contains("short-labels': truncated: the header says 12 labels (12 bytes) but only 10 bytes"));
  write_bytes(dir / "header", images.substr(0, 10));
  CHECK_THROWS_WITH(read_idx_images(dir / "header"),
                    Contains("header': header truncated: 3 dimensions need 16 bytes, the file has 10"));
  write_bytes(dir / "empty", "");
  CHECK_THROWS_WITH(read_idx_images(dir / "empty"),
                    Contains("empty': too short for an IDX header: 0 bytes (empty file)"));
}

TEST_CASE("bytes after the payload are an error naming the file", "[idx][errors]") {
  TempDir dir;
  write_bytes(dir / "long.gz", gzip(idx_images(12, 4, 5) + "xyz"));
  CHECK_THROWS_WITH(read_idx_images(dir / "long.gz"),
                    Contains("long.gz': 3 trailing bytes after the 12 images of 4x5 the header announces (240 bytes)"));
  write_bytes(dir / "long-labels", idx_labels(kTrainLabels) + "!");
  CHECK_THROWS_WITH(read_idx_labels(dir / "long-labels"),
                    Contains("long-labels': 1 trailing bytes after the 12 labels"));
}

TEST_CASE("implausible image dimensions are an error naming the file", "[idx][errors]") {
  TempDir dir;
  write_bytes(dir / "flat", idx_images(3, 0, 5));
  CHECK_THROWS_WITH(read_idx_images(dir / "flat"), Contains("flat': implausible image size 0x5"));
  // A header announcing 4 billion images of 65535x65535 must fail on its dimensions, not try to allocate.
  write_bytes(dir / "huge", big_endian(0x803) + big_endian(0xffffffff) + big_endian(65535) + big_endian(65535));
  CHECK_THROWS_WITH(read_idx_images(dir / "huge"), Contains("huge': implausible image size 65535x65535"));
  write_bytes(dir / "many", big_endian(0x803) + big_endian(0xffffffff) + big_endian(28) + big_endian(28));
  CHECK_THROWS_WITH(read_idx_images(dir / "many"), Contains("many': truncated: the header says 4294967295 images"));
}

TEST_CASE("a corrupt or cut-off gzip stream is an error naming the file", "[idx][errors]") {
  TempDir dir;
  std::string zipped = gzip(idx_images(12, 4, 5));
  write_bytes(dir / "cut.gz", zipped.substr(0, zipped.size() / 2));
  CHECK_THROWS_WITH(read_idx_images(dir / "cut.gz"), Contains("cut.gz': corrupt gzip stream: it ends early"));
  std::string garbled = zipped;
  for (size_t i = 10; i < garbled.size() - 8; ++i) garbled[i] = static_cast<char>(0xff);  // deflate data
  write_bytes(dir / "garbled.gz", garbled);
  CHECK_THROWS_WITH(read_idx_images(dir / "garbled.gz"), Contains("garbled.gz': corrupt gzip stream"));
  std::string bad_crc = zipped;
  bad_crc[bad_crc.size() - 6] ^= 0x55;  // the CRC-32 in the trailer
  write_bytes(dir / "crc.gz", bad_crc);
  CHECK_THROWS_WITH(read_idx_images(dir / "crc.gz"), Contains("crc.gz': corrupt gzip stream: incorrect data check"));
  write_bytes(dir / "tail.gz", zipped + "junk");
  CHECK_THROWS_WITH(read_idx_images(dir / "tail.gz"),
                    Contains("tail.gz': corrupt gzip stream: 4 unexpected bytes after its end"));
  // Found by fuzz_idx: the trailer's size is a claim (here 4 GiB - 1 for a 300-byte file), used as an allocation
  // hint only as far as deflate could expand the data; the stream's own length check then rejects it.
  std::string lying = zipped;
  for (size_t i = lying.size() - 4; i < lying.size(); ++i) lying[i] = static_cast<char>(0xff);
  write_bytes(dir / "lying.gz", lying);
  CHECK_THROWS_WITH(read_idx_images(dir / "lying.gz"),
                    Contains("lying.gz': corrupt gzip stream: incorrect length check"));
}

TEST_CASE("the ten classes and their folder names", "[fashion-mnist]") {
  const auto& classes = fashion_mnist_classes();
  REQUIRE(classes.size() == 10);
  CHECK(classes.front() == "T-shirt/top");
  CHECK(classes[9] == "Ankle boot");
  CHECK(class_folder_name("T-shirt/top") == "T-shirt_top");
  CHECK(class_folder_name("Ankle boot") == "Ankle boot");
  CHECK(class_folder_name("a\\b:c*d?e\"f<g>h|i\tj") == "a_b_c_d_e_f_g_h_i_j");
  CHECK(class_folder_name("..") == "_");
  CHECK(class_folder_name("") == "_");
}

TEST_CASE("conversion writes train and val trees whose PNGs are the IDX images under their labels", "[fashion-mnist]") {
  TempDir dir;
  write_source(dir / "source");
  const fs::path out = dir / "fashion";
  std::vector<std::pair<int64_t, int64_t>> calls;
  const ConvertSummary summary =
      convert_fashion_mnist(dir / "source", out, [&](int64_t done, int64_t total) { calls.emplace_back(done, total); });
  CHECK(summary.train_images == 12);
  CHECK(summary.val_images == 5);
  CHECK_FALSE(summary.already_present);
  CHECK(sorted(list_names(out)) == std::vector<std::string>{".vit-dataset.json", "train", "val"});
  check_split(out / "train", kTrainLabels);
  check_split(out / "val", kValLabels);
  CHECK(list_names(out / "train" / "Trouser") == std::vector<std::string>{"00001.png"});
  CHECK(sorted(list_names(out / "train" / "Dress")) == std::vector<std::string>{"00003.png", "00010.png"});
  CHECK(partials_beside(out).empty());

  REQUIRE_FALSE(calls.empty());
  CHECK(calls.front() == std::make_pair(int64_t{0}, int64_t{17}));
  CHECK(calls.back() == std::make_pair(int64_t{17}, int64_t{17}));
  CHECK(std::is_sorted(calls.begin(), calls.end()));

  const std::string marker = read_bytes(out / ".vit-dataset.json");
  CHECK_THAT(marker, Contains("\"dataset\": \"fashion-mnist\""));
  CHECK_THAT(marker, Contains("\"T-shirt_top\""));
}

TEST_CASE("a second conversion finds the first and writes nothing", "[fashion-mnist]") {
  TempDir dir;
  write_source(dir / "source");
  const fs::path out = dir / "fashion";
  convert_fashion_mnist(dir / "source", out);
  write_bytes(out / "train" / "Bag" / "mine.txt", "a file the user added");
  for (const auto& name : list_names(dir / "source")) fs::remove(dir / "source" / name);
  fs::remove(dir / "source");  // the finished tree is enough: the sources are not even read
  bool called = false;
  const ConvertSummary again =
      convert_fashion_mnist(dir / "source", out.string() + "/", [&](int64_t, int64_t) { called = true; });
  CHECK(again.already_present);
  CHECK(again.train_images == 12);
  CHECK(again.val_images == 5);
  CHECK_FALSE(called);
  CHECK(read_bytes(out / "train" / "Bag" / "mine.txt") == "a file the user added");
}

TEST_CASE("an existing folder or file that is not a conversion is refused and left untouched", "[fashion-mnist]") {
  TempDir dir;
  write_source(dir / "source");
  const fs::path out = dir / "photos";
  fs::create_directories(out);
  write_bytes(out / "holiday.png", "not really a png");
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", out),
                    Contains("'" + out.string() + "': already exists and is not a Fashion-MNIST conversion"));
  CHECK(list_names(out) == std::vector<std::string>{"holiday.png"});
  CHECK(read_bytes(out / "holiday.png") == "not really a png");
  CHECK(partials_beside(out).empty());

  write_bytes(dir / "file", "text");
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", dir / "file"),
                    Contains("file': already exists and is not a folder"));
  CHECK(read_bytes(dir / "file") == "text");

  const fs::path other = dir / "other";
  fs::create_directories(other);
  write_bytes(other / ".vit-dataset.json", R"({"dataset": "cifar10"})");
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", other), Contains("holds the dataset 'cifar10'"));
  write_bytes(other / ".vit-dataset.json", "{ broken");
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", other), Contains("unreadable dataset marker"));
  CHECK(list_names(other) == std::vector<std::string>{".vit-dataset.json"});
}

TEST_CASE("an empty folder at OUT, and missing parent folders, are fine", "[fashion-mnist]") {
  TempDir dir;
  write_source(dir / "source");
  fs::create_directories(dir / "empty");
  CHECK(convert_fashion_mnist(dir / "source", dir / "empty").train_images == 12);
  CHECK(fs::exists(dir / "empty" / ".vit-dataset.json"));
  CHECK(convert_fashion_mnist(dir / "source", dir / "a" / "b" / "c").val_images == 5);
  check_split(dir / "a" / "b" / "c" / "val", kValLabels);
}

TEST_CASE("leftovers of an interrupted run are removed, a stopped run leaves nothing", "[fashion-mnist]") {
  TempDir dir;
  write_source(dir / "source");
  const fs::path out = dir / "fashion";
  const fs::path leftover = dir / (".fashion.partial-" + std::to_string(dead_pid()) + "-0");
  fs::create_directories(leftover / "train");
  write_bytes(leftover / "train" / "00001.png", "half");
  const fs::path live = dir / (".fashion.partial-" + std::to_string(::getppid()) + "-0");  // a running process
  fs::create_directories(live);

  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", out,
                                          [](int64_t done, int64_t) {
                                            if (done > 0) throw std::runtime_error("stopped by the user");
                                          }),
                    Contains("stopped by the user"));
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(leftover));
  CHECK(fs::exists(live));
  CHECK(partials_beside(out) == std::vector<std::string>{live.filename().string()});
}

TEST_CASE("a missing source folder or file is an error naming it", "[fashion-mnist][errors]") {
  TempDir dir;
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "nowhere", dir / "out"),
                    Contains("nowhere': no such folder (the Debian package dataset-fashion-mnist"));
  write_source(dir / "source");
  fs::remove(dir / "source" / "t10k-labels-idx1-ubyte");
  const std::string missing = (dir / "source" / "t10k-labels-idx1-ubyte").string();
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", dir / "out"),
                    Contains("'" + missing + ".gz': no such file (nor '" + missing + "')"));
  CHECK_FALSE(fs::exists(dir / "out"));
}

TEST_CASE("a label of 10 or more is an error naming the file and the index", "[fashion-mnist][errors]") {
  TempDir dir;
  write_source(dir / "source");
  write_bytes(dir / "source" / "t10k-labels-idx1-ubyte", idx_labels({1, 2, 3, 10, 4}));
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", dir / "out"),
                    Contains("t10k-labels-idx1-ubyte': label 10 at index 3 is not a Fashion-MNIST class") &&
                        Contains("(expected 0 to 9)"));
  CHECK_FALSE(fs::exists(dir / "out"));
  CHECK(partials_beside(dir / "out").empty());
}

TEST_CASE("label and image counts that differ are an error naming the label file", "[fashion-mnist][errors]") {
  TempDir dir;
  write_source(dir / "source");
  write_bytes(dir / "source" / "train-labels-idx1-ubyte.gz", gzip(idx_labels({1, 2, 3})));
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", dir / "out"),
                    Contains("train-labels-idx1-ubyte.gz': 3 labels, but '") &&
                        Contains("train-images-idx3-ubyte.gz' holds 12 images"));
  CHECK_FALSE(fs::exists(dir / "out"));
}

TEST_CASE("train and val images of different sizes are an error", "[fashion-mnist][errors]") {
  TempDir dir;
  write_source(dir / "source");
  write_bytes(dir / "source" / "t10k-images-idx3-ubyte", idx_images(5, 5, 4));
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", dir / "out"),
                    Contains("t10k-images-idx3-ubyte': images are 5x4 but those of '") && Contains("are 4x5"));
}

TEST_CASE("an output folder that cannot be created is an error naming it, and nothing is left",
          "[fashion-mnist][errors]") {
  TempDir dir;
  write_source(dir / "source");
  fs::create_directories(dir / "locked");
  fs::permissions(dir / "locked", fs::perms::owner_read | fs::perms::owner_exec);
  if (::access((dir / "locked").c_str(), W_OK) == 0) {
    WARN("running as root: permissions do not stop writes, nothing to check");
    return;
  }
  CHECK_THROWS_WITH(convert_fashion_mnist(dir / "source", dir / "locked" / "out"),
                    Contains("locked/.out.partial-") && Contains("cannot create folder: Permission denied"));
  fs::permissions(dir / "locked", fs::perms::owner_all);
  CHECK(list_names(dir / "locked").empty());
}

}  // namespace vit::data
