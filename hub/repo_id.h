#pragma once
// Hugging Face Hub repo ids as a model argument: `[hf-hub:|hf_hub:]org/name[@revision]`, as timm's
// `hf-hub:` prefix and transformers' `from_pretrained` take them.

#include <optional>
#include <string>

namespace vit::hub {

struct RepoId {
  std::string org;                // "timm"
  std::string name;               // "vit_base_patch16_224.augreg2_in21k_ft_in1k"
  std::string revision = "main";  // a branch, tag or 40-hex commit

  std::string id() const { return org + "/" + name; }  // "timm/vit_base_patch16_224..."
};

// The repo id `argument` names, or std::nullopt when it does not look like one (no `org/name` shape, or a name
// ending like a weights file, `runs/best.safetensors`: then it is a path or a preset name). Throws
// std::invalid_argument for an id that has the shape but breaks huggingface_hub's rules (characters other than letters,
// digits, '-', '_', '.'; '--' or '..'; a leading or trailing '-' or '.'; a name over 96 characters; an empty or unsafe
// revision), naming the rule.
std::optional<RepoId> parse_repo_id(const std::string& argument);

}  // namespace vit::hub
