#pragma once
// Datasets laid out as folders of images, one subfolder per class (torchvision's ImageFolder).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vit::data {

struct Sample {
  std::filesystem::path path;
  int64_t label;
};

struct ImageFolder {
  std::filesystem::path root;
  std::vector<std::string> classes;  // index = label
  std::vector<Sample> samples;       // sorted by class, then path
};

// True for the extensions the decoder reads: .jpg .jpeg .png .bmp .tif .tiff .webp, in any letter case.
bool is_image_file(const std::filesystem::path& path);
std::string image_extension_list();  // ".jpg .jpeg ...", for messages

// The image files under `folder`, recursively, hidden files and folders skipped, sorted by path. Throws
// std::invalid_argument if the folder cannot be read.
std::vector<std::filesystem::path> images_under(const std::filesystem::path& folder);

// Scans ROOT/<class>/**/<image>: classes are ROOT's subfolders sorted by name, their subfolders are searched
// recursively, hidden files and folders (".name") are skipped. Throws std::invalid_argument when ROOT is
// missing, has no class folders, a class has no images, or there are fewer than two classes.
ImageFolder scan_image_folder(const std::filesystem::path& root);

// Scans a validation tree whose classes are matched to `classes` by name (labels are indices into `classes`).
// A class folder that `classes` lacks is an error naming it; classes may be absent from the validation tree.
ImageFolder scan_image_folder(const std::filesystem::path& root, const std::vector<std::string>& classes);

struct DatasetSplit {
  ImageFolder train;
  std::optional<ImageFolder> val;
};

// Where training and validation images come from, in order of precedence:
//   `val_dir` given           -> train from DATA_DIR (or DATA_DIR/train if present), val from val_dir
//   DATA_DIR/train exists     -> train from it, val from DATA_DIR/val if that exists
//   otherwise                 -> train from DATA_DIR itself
// then, if there is no val folder and `val_split` > 0, a stratified, seeded fraction of each class is held out;
// a fraction with a val folder is an error (validation_folder tells beforehand).
// The validation folder open_dataset would read, if any.
std::optional<std::filesystem::path> validation_folder(const std::filesystem::path& data_dir,
                                                       const std::optional<std::filesystem::path>& val_dir);

DatasetSplit open_dataset(const std::filesystem::path& data_dir, const std::optional<std::filesystem::path>& val_dir,
                          double val_split, uint64_t seed);

// Stratified split: from each class, round(fraction * n) randomly chosen samples (at least one, and at least
// one left for training) go to the second folder. Deterministic for a seed.
std::pair<ImageFolder, ImageFolder> split_stratified(const ImageFolder& folder, double fraction, uint64_t seed);

}  // namespace vit::data
