#pragma once
// Where a model argument names a Hugging Face Hub model, the local folder that holds it.

#include <string>

namespace vit::hub {

// `argument` itself when it is an existing path (a local path always wins) or does not look like a Hub repo id
// (a preset name, a missing file: the caller's errors say what is wrong); for a Hub id
// (`[hf-hub:|hf_hub:]org/name[@revision]`), the snapshot folder huggingface_hub's cache holds for it, so that a
// model Python's timm or transformers downloaded is used as it is. Throws std::invalid_argument for an invalid id,
// and for one the cache lacks (naming the cache folder and how to fill it).
std::string resolve_model_argument(const std::string& argument);

}  // namespace vit::hub
