#include "data/image_folder.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <random>
#include <stdexcept>

namespace vit::data {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, 7> kImageExtensions{".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"};

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

bool is_hidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

std::vector<std::string> class_folders(const fs::path& root) {
  std::error_code error;
  if (!fs::is_directory(root, error)) fail("data folder '" + root.string() + "' does not exist or is not a folder");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root, error)) {
    if (entry.is_directory(error) && !is_hidden(entry.path())) names.push_back(entry.path().filename().string());
  }
  if (error) fail("cannot read folder '" + root.string() + "': " + error.message());
  std::sort(names.begin(), names.end());
  if (names.empty())
    fail("'" + root.string() + "' has no class subfolders (expected " + root.string() + "/<class>/<images>)");
  return names;
}

void add_class_images(ImageFolder& folder, const std::string& class_name, int64_t label) {
  const fs::path class_dir = folder.root / class_name;
  const auto images = images_under(class_dir);
  if (images.empty())
    fail("class '" + class_name + "' ('" + class_dir.string() + "') has no images (" + image_extension_list() + ")");
  for (const auto& path : images) folder.samples.push_back({path, label});
}

}  // namespace

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::find(kImageExtensions.begin(), kImageExtensions.end(), ext) != kImageExtensions.end();
}

std::string image_extension_list() {
  std::string list;
  for (const char* ext : kImageExtensions) list += (list.empty() ? "" : " ") + std::string(ext);
  return list;
}

std::vector<fs::path> images_under(const fs::path& folder) {
  std::vector<fs::path> images;
  std::error_code error;
  fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, error);
  if (error) fail("cannot read folder '" + folder.string() + "': " + error.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) fail("cannot read inside '" + folder.string() + "': " + error.message());
    if (is_hidden(it->path())) {
      if (it->is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(error) && is_image_file(it->path())) images.push_back(it->path());
  }
  std::sort(images.begin(), images.end());  // a stable order, whatever the file system returns
  return images;
}

ImageFolder scan_image_folder(const fs::path& root) {
  ImageFolder folder;
  folder.root = root;
  folder.classes = class_folders(root);
  if (folder.classes.size() < 2)
    fail("'" + root.string() + "' has only one class ('" + folder.classes.front() +
         "'); classification needs at least two class folders");
  for (size_t label = 0; label < folder.classes.size(); ++label) {
    add_class_images(folder, folder.classes[label], static_cast<int64_t>(label));
  }
  return folder;
}

ImageFolder scan_image_folder(const fs::path& root, const std::vector<std::string>& classes) {
  ImageFolder folder;
  folder.root = root;
  folder.classes = classes;
  for (const auto& name : class_folders(root)) {
    const auto known = std::find(classes.begin(), classes.end(), name);
    if (known == classes.end())
      fail("class folder '" + name + "' in '" + root.string() + "' is not one of the model's/training classes");
    add_class_images(folder, name, known - classes.begin());
  }
  std::stable_sort(folder.samples.begin(), folder.samples.end(),
                   [](const Sample& a, const Sample& b) { return a.label < b.label; });
  return folder;
}

std::pair<ImageFolder, ImageFolder> split_stratified(const ImageFolder& folder, double fraction, uint64_t seed) {
  if (!(fraction > 0.0 && fraction < 1.0))
    fail("validation split must be a fraction in (0, 1), got " + std::to_string(fraction));
  std::map<int64_t, std::vector<size_t>> by_class;
  for (size_t i = 0; i < folder.samples.size(); ++i) by_class[folder.samples[i].label].push_back(i);
  ImageFolder train{folder.root, folder.classes, {}};
  ImageFolder held_out{folder.root, folder.classes, {}};
  std::mt19937_64 rng(seed);
  std::vector<bool> to_val(folder.samples.size(), false);
  for (auto& [label, indices] : by_class) {
    if (indices.size() < 2)
      fail("class '" + folder.classes[static_cast<size_t>(label)] +
           "' has one image: too few to hold some out for validation");
    std::shuffle(indices.begin(), indices.end(), rng);
    const auto n = static_cast<double>(indices.size());
    const auto count = std::clamp<size_t>(static_cast<size_t>(std::lround(fraction * n)), 1, indices.size() - 1);
    for (size_t k = 0; k < count; ++k) to_val[indices[k]] = true;
  }
  for (size_t i = 0; i < folder.samples.size(); ++i) {
    (to_val[i] ? held_out : train).samples.push_back(folder.samples[i]);
  }
  return {train, held_out};
}

std::optional<fs::path> validation_folder(const fs::path& data_dir, const std::optional<fs::path>& val_dir) {
  if (val_dir) return val_dir;
  std::error_code error;
  if (fs::is_directory(data_dir / "train", error) && fs::is_directory(data_dir / "val", error)) return data_dir / "val";
  return std::nullopt;
}

DatasetSplit open_dataset(const fs::path& data_dir, const std::optional<fs::path>& val_dir, double val_split,
                          uint64_t seed) {
  std::error_code error;
  const fs::path train_root = fs::is_directory(data_dir / "train", error) ? data_dir / "train" : data_dir;
  const std::optional<fs::path> val_root = validation_folder(data_dir, val_dir);
  if (val_root && val_split > 0.0)
    fail("a held-out validation fraction cannot be combined with a validation folder ('" + val_root->string() + "')");
  DatasetSplit split;
  split.train = scan_image_folder(train_root);
  if (val_root) {
    split.val = scan_image_folder(*val_root, split.train.classes);
  } else if (val_split > 0.0) {
    auto [train, val] = split_stratified(split.train, val_split, seed);
    split.train = std::move(train);
    split.val = std::move(val);
  }
  return split;
}

}  // namespace vit::data
