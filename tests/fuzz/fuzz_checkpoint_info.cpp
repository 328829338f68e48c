// Telling model files apart (models/checkpoint_layouts.h): a folder with model.safetensors and, when present,
// config.json and preprocessor_config.json, read as a vit weights file, a timm checkpoint or a Hugging Face
// checkpoint from its tensor names and metadata. The input holds the three files, separated by lines
// "----8<----"; an empty part is a file that is absent.
#include "models/checkpoint_layouts.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = vit::fuzz::split_parts(data, size, 3);
  const auto folder = vit::fuzz::scratch_dir() / "checkpoint";
  std::filesystem::create_directories(folder);
  const char* names[] = {"model.safetensors", "config.json", "preprocessor_config.json"};
  for (size_t i = 0; i < 3; ++i) {
    std::error_code ignored;
    std::filesystem::remove(folder / names[i], ignored);
    if (i == 0 || !parts[i].empty()) {
      vit::fuzz::scratch_file(std::string("checkpoint/") + names[i], reinterpret_cast<const uint8_t*>(parts[i].data()),
                              parts[i].size());
    }
  }
  vit::fuzz::expect_result_or_clear_error(folder.string(), [&] {
    const auto info = vit::read_checkpoint_info(folder);
    info.metadata.validate();
  });
  return 0;
}
