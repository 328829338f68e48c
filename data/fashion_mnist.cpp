#include "data/fashion_mnist.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>
#include <opencv2/imgcodecs.hpp>

#include "data/idx_file.h"
#include "util/files.h"

// Listing and removing folders go through util/files.h, not std::filesystem's directory iteration (it says why).

namespace vit::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kMarkerName = ".vit-dataset.json";
constexpr const char* kDatasetId = "fashion-mnist";
constexpr int kMarkerVersion = 1;
constexpr int64_t kBatch = 250;  // images a writer thread takes at a time
constexpr unsigned kMaxWriterThreads = 8;
// zlib level 1 (also OpenCV's default, made explicit): on 28x28 images higher levels cost 5-40% more time for
// files 1-3% smaller; level 0 is three times faster but stores the pixels uncompressed, 70% larger.
constexpr int kPngCompression = 1;

[[noreturn]] void fail(const fs::path& path, const std::string& problem) {
  throw std::runtime_error("'" + path.string() + "': " + problem);
}

// ---- the source files ----

// One split as read from its IDX files, checked for consistency.
struct Split {
  std::string folder;  // "train" or "val"
  fs::path images_path;
  IdxImages images;
  std::vector<uint8_t> labels;
};

// SOURCE/<name>.gz, or SOURCE/<name> where a distribution ships the files unpacked.
fs::path find_source(const fs::path& dir, const std::string& name) {
  std::error_code error;
  const fs::path gzipped = dir / (name + ".gz");
  if (fs::exists(gzipped, error)) return gzipped;
  const fs::path plain = dir / name;
  if (fs::exists(plain, error)) return plain;
  fail(gzipped, "no such file (nor '" + plain.string() + "')");
}

Split read_split(const fs::path& dir, const std::string& folder, const std::string& prefix) {
  Split split;
  split.folder = folder;
  split.images_path = find_source(dir, prefix + "-images-idx3-ubyte");
  const fs::path labels_path = find_source(dir, prefix + "-labels-idx1-ubyte");
  split.images = read_idx_images(split.images_path);
  split.labels = read_idx_labels(labels_path);
  if (static_cast<int64_t>(split.labels.size()) != split.images.count)
    fail(labels_path, std::to_string(split.labels.size()) + " labels, but '" + split.images_path.string() + "' holds " +
                          std::to_string(split.images.count) + " images; they must pair up");
  const size_t classes = fashion_mnist_classes().size();
  for (size_t i = 0; i < split.labels.size(); ++i) {
    if (split.labels[i] >= classes)
      fail(labels_path, "label " + std::to_string(split.labels[i]) + " at index " + std::to_string(i) +
                            " is not a Fashion-MNIST class (expected 0 to " + std::to_string(classes - 1) + ")");
  }
  return split;
}

// ---- folders, with POSIX calls ----

void write_file(const fs::path& path, const std::vector<uchar>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, std::string("cannot create: ") + std::strerror(errno));
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      fail(path, std::string("write failed: ") + std::strerror(saved));
    }
    written += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) fail(path, std::string("write failed: ") + std::strerror(errno));
}

void create_folder(const fs::path& path) {
  std::error_code error;
  fs::create_directories(path, error);
  if (error) fail(path, "cannot create folder: " + error.message());
}

// ---- the marker ----

// The marker vouches for files that may have been deleted or added since it was written: each class folder's
// PNG count must be the marker's (a listing, no decoding: tens of milliseconds for 70,000 files). Markers written
// before the per-class counts existed are taken as they are.
void check_class_folders(const fs::path& out, const fs::path& shown, const json& marker) {
  if (!marker.contains("class_folders")) return;
  const json& folders = marker.at("class_folders");
  for (const char* split : {"train", "val"}) {
    const json& counts = marker.at("splits").at(split);
    if (!counts.contains("per_class")) continue;
    const json& per_class = counts.at("per_class");
    if (!folders.is_array() || !per_class.is_array() || per_class.size() != folders.size())
      fail(shown, "its " + std::string(kMarkerName) + " lists " + std::to_string(folders.size()) +
                      " class folders but " + std::to_string(per_class.size()) + " counts for " + split);
    for (size_t c = 0; c < folders.size(); ++c) {
      const fs::path folder = fs::path(split) / folders.at(c).get<std::string>();
      int64_t found = 0;
      for (const auto& name : list_names(out / folder)) found += fs::path(name).extension() == ".png" ? 1 : 0;
      const int64_t listed = per_class.at(c).get<int64_t>();
      if (found != listed)
        fail(shown, "changed since its conversion: '" + folder.string() + "' holds " + std::to_string(found) +
                        " images where " + std::string(kMarkerName) + " lists " + std::to_string(listed) +
                        "; remove the folder to convert again");
    }
  }
}

// The counts of a finished conversion at `out`, if it holds one; nothing if it has no marker. A marker for
// another dataset, or one that cannot be read, is an error: that folder is not ours to replace.
std::optional<ConvertSummary> read_marker(const fs::path& out, const fs::path& shown) {
  const fs::path marker = out / kMarkerName;
  std::error_code error;
  if (!fs::is_regular_file(marker, error)) return std::nullopt;
  try {
    std::ifstream in(marker);
    const json j = json::parse(in);
    const std::string dataset = j.at("dataset").get<std::string>();
    if (dataset != kDatasetId)
      fail(shown, "holds the dataset '" + dataset + "', not Fashion-MNIST; refusing to write into it");
    ConvertSummary summary;
    // Integers only: nlohmann converts a float with a cast, undefined beyond int64_t's range.
    const json& train_images = j.at("splits").at("train").at("images");
    const json& val_images = j.at("splits").at("val").at("images");
    if (!train_images.is_number_integer() || !val_images.is_number_integer())
      fail(shown, "its " + std::string(kMarkerName) + " gives image counts that are not integers");
    summary.train_images = train_images.get<int64_t>();
    summary.val_images = val_images.get<int64_t>();
    summary.already_present = true;
    check_class_folders(out, shown, j);
    return summary;
  } catch (const json::exception& e) {
    fail(marker, std::string("unreadable dataset marker (") + e.what() + "); remove the folder to convert again");
  }
}

void write_marker(const fs::path& out, const Split& train, const Split& val) {
  json splits = json::object();
  for (const Split* split : {&train, &val}) {
    std::vector<int64_t> per_class(fashion_mnist_classes().size(), 0);
    for (const uint8_t label : split->labels) ++per_class[label];
    splits[split->folder] = {{"images", split->images.count}, {"per_class", per_class}};
  }
  std::vector<std::string> folders;
  for (const auto& name : fashion_mnist_classes()) folders.push_back(class_folder_name(name));
  const json j = {{"format", "vit-imagefolder"},
                  {"format_version", kMarkerVersion},
                  {"dataset", kDatasetId},
                  {"image_size", {train.images.rows, train.images.cols}},
                  {"channels", 1},
                  {"classes", fashion_mnist_classes()},
                  {"class_folders", folders},
                  {"splits", splits}};
  const std::string text = j.dump(2) + "\n";
  write_file(out / kMarkerName, std::vector<uchar>(text.begin(), text.end()));
}

// ---- what is at OUT ----

bool is_empty_folder(const fs::path& path) {
  std::error_code error;
  return fs::is_directory(fs::symlink_status(path, error)) && list_names(path).empty();
}

// Nothing, an empty folder or a finished conversion may be at OUT: the first two are replaced, the last is
// returned. Anything else is refused before a byte is written.
std::optional<ConvertSummary> inspect_out(const fs::path& out, const fs::path& shown) {
  std::error_code error;
  const fs::file_status status = fs::symlink_status(out, error);
  if (!fs::exists(status)) return std::nullopt;
  if (fs::is_directory(fs::status(out, error))) {
    if (auto summary = read_marker(out, shown)) return summary;
    if (is_empty_folder(out)) return std::nullopt;
    fail(shown, "already exists and is not a Fashion-MNIST conversion (no " + std::string(kMarkerName) +
                    "); refusing to write into it: name a new folder or remove this one");
  }
  fail(shown, "already exists and is not a folder; refusing to replace it");
}

// Temporary folders are named .<OUT name>.partial-<pid>-<n>; one whose process is gone is the leftover of an
// interrupted run and is removed.
std::string partial_prefix(const fs::path& out) { return "." + out.filename().string() + ".partial-"; }

void remove_dead_partials(const fs::path& out) {
  const std::string prefix = partial_prefix(out);
  for (const std::string& name : list_names(out.parent_path())) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) remove_tree(out.parent_path() / name);
  }
}

fs::path partial_path(const fs::path& out) {
  static std::atomic<int> counter{0};
  return out.parent_path() / (partial_prefix(out) + std::to_string(::getpid()) + "-" + std::to_string(counter++));
}

// ---- writing ----

// "00042.png": at least five digits, more if the split needs them, so names sort in dataset order.
std::string png_name(int64_t index, int64_t count) {
  const size_t width = std::max<size_t>(5, std::to_string(std::max<int64_t>(count - 1, 0)).size());
  const std::string digits = std::to_string(index);
  return std::string(width > digits.size() ? width - digits.size() : 0, '0') + digits + ".png";
}

// Creating 70,000 small files is mostly kernel time spent per file, which spreads well over cores.
int writer_threads() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, kMaxWriterThreads));
}

// Writes a split's PNGs with a few threads taking batches of images in turn. The calling thread is one of them
// and reports progress after each of its batches, so `progress` is only ever called from it. The first error
// (or an exception from `progress`) stops every thread and is rethrown.
void write_split(const Split& split, const fs::path& root, int64_t& done, int64_t total,
                 const std::function<void(int64_t, int64_t)>& progress) {
  std::vector<fs::path> class_dirs;
  for (const auto& name : fashion_mnist_classes()) {
    class_dirs.push_back(root / split.folder / class_folder_name(name));
    create_folder(class_dirs.back());
  }
  const IdxImages& images = split.images;
  const int rows = static_cast<int>(images.rows);
  const int cols = static_cast<int>(images.cols);
  const std::vector<int> params{cv::IMWRITE_PNG_COMPRESSION, kPngCompression};

  std::atomic<int64_t> next{0};
  std::atomic<int64_t> written{0};
  std::atomic<bool> stop{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  int64_t reported = -1;  // the calling thread's last progress report
  auto work = [&](bool reports_progress) {
    try {
      std::vector<uchar> png;
      for (int64_t begin; !stop && (begin = next.fetch_add(kBatch)) < images.count;) {
        const int64_t end = std::min(begin + kBatch, images.count);
        for (int64_t i = begin; i < end; ++i) {
          const cv::Mat image(rows, cols, CV_8UC1, const_cast<uint8_t*>(images.pixels.data() + i * rows * cols));
          const fs::path path = class_dirs[split.labels[i]] / png_name(i, images.count);
          if (!cv::imencode(".png", image, png, params)) fail(path, "PNG encoding failed");
          write_file(path, png);
        }
        written += end - begin;
        if (reports_progress && progress) progress(reported = done + written, total);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      stop = true;
    }
  };
  std::vector<std::thread> helpers;
  for (int t = 1; t < writer_threads(); ++t) {
    try {
      helpers.emplace_back(work, false);
    } catch (const std::system_error&) {
      break;  // no more threads to be had: fewer writers are slower, not wrong
    }
  }
  work(true);
  for (auto& helper : helpers) helper.join();
  if (first_error) std::rethrow_exception(first_error);
  done += images.count;
  if (progress && reported != done) progress(done, total);
}

fs::path absolute_out(const fs::path& out_dir) {
  if (out_dir.empty()) throw std::runtime_error("convert_fashion_mnist: the output folder name is empty");
  fs::path out = fs::absolute(out_dir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "out/" names "out"
  return out;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> classes{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return classes;
}

std::string class_folder_name(const std::string& class_name) {
  if (class_name.empty() || class_name == "." || class_name == "..") return "_";
  std::string folder = class_name;
  for (char& c : folder) {
    if (static_cast<unsigned char>(c) < 0x20 || std::strchr("/\\:*?\"<>|", c) != nullptr) c = '_';
  }
  return folder;
}

ConvertSummary convert_fashion_mnist(const fs::path& source_dir, const fs::path& out_dir,
                                     const std::function<void(int64_t, int64_t)>& progress) {
  const fs::path out = absolute_out(out_dir);
  if (auto existing = inspect_out(out, out_dir)) return *existing;

  std::error_code error;
  if (!fs::is_directory(source_dir, error))
    fail(source_dir,
         "no such folder (the Debian package dataset-fashion-mnist installs the dataset in "
         "/usr/share/datasets/fashion-mnist)");
  // Everything is read and checked before anything is written: a bad source leaves no trace.
  const Split train = read_split(source_dir, "train", "train");
  const Split val = read_split(source_dir, "val", "t10k");
  if (val.images.rows != train.images.rows || val.images.cols != train.images.cols)
    fail(val.images_path, "images are " + std::to_string(val.images.rows) + "x" + std::to_string(val.images.cols) +
                              " but those of '" + train.images_path.string() + "' are " +
                              std::to_string(train.images.rows) + "x" + std::to_string(train.images.cols));

  create_folder(out.parent_path());
  remove_dead_partials(out);
  const fs::path partial = partial_path(out);
  try {
    create_folder(partial);
    int64_t done = 0;
    const int64_t total = train.images.count + val.images.count;
    if (progress) progress(0, total);
    write_split(train, partial, done, total, progress);
    write_split(val, partial, done, total, progress);
    write_marker(partial, train, val);
    // The PNGs must be on disk before the rename publishes them, or a power loss could leave empty files under a
    // complete-looking OUT; one syncfs, as 70,000 fsyncs take minutes on some disks.
    sync_file_system(partial);
    fs::rename(partial, out, error);
    if (error) {
      // Another run may have finished first: its result is as good as ours.
      if (auto existing = inspect_out(out, out_dir)) {
        remove_tree(partial);
        return *existing;
      }
      throw std::runtime_error("cannot move the converted tree '" + partial.string() +
                               "' into place: " + error.message());
    }
    sync_path(out.parent_path(), O_RDONLY | O_DIRECTORY);
  } catch (const std::exception& e) {
    remove_tree(partial);
    // Named by the folder the user asked for: the partial one is gone by the time the message is read.
    fail(out_dir, std::string("not converted, nothing left behind: ") + e.what());
  }
  ConvertSummary summary;
  summary.train_images = train.images.count;
  summary.val_images = val.images.count;
  return summary;
}

}  // namespace vit::data
