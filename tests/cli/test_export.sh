#!/usr/bin/env bash
# End-to-end checks of `vit export`, with Python as the independent judge: the TorchScript file loads with
# torch.jit.load and gives `vit classify --logits`'s logits for batches of 1 and 7; the timm and Hugging Face
# folders, read by Python into torchvision's ViT, give them too; HF -> vit round trips bit for bit; errors.
# usage: test_export.sh VIT_BINARY PYTHON
set -uo pipefail
vit=$1
python=$2
here=$(dirname "$0")
source "$here/lib.sh"

"$python" "$here/make_export_fixtures.py" "$work" || { echo "FAIL fixtures"; exit 1; }
"$vit" classify "$work/model.safetensors" "$work/images" --format json --logits -k 1 >"$work/logits.jsonl"
check "the weights file classifies" $?

expect "export TorchScript" 0 "wrote TorchScript file" -- "$vit" export "$work/model.safetensors" --out "$work/model.pt"
expect "export timm folder" 0 "wrote timm folder" \
  -- "$vit" export "$work/model.safetensors" --out "$work/timm" --format timm
expect "--format safetensors, the old name of timm, still works and says so" 0 "now called --format timm" \
  -- "$vit" export "$work/model.safetensors" --out "$work/timm-old" --format safetensors
cmp -s "$work/timm/model.safetensors" "$work/timm-old/model.safetensors" && cmp -s "$work/timm/config.json" "$work/timm-old/config.json"
check "--format safetensors writes the same folder as --format timm" $?
expect "export Hugging Face" 0 "wrote hf folder" -- "$vit" export "$work/model.safetensors" --out "$work/hf" --format hf

# judge PYTHON_CODE: runs with `expected` (path -> vit's logits), `images(paths)` (vit's preprocessing redone in
# Python: these images need no resize or crop), `close(a, b, tol)` and the helper module vit_files.
judge() {
  "$python" - "$work" "$here/../reference" <<PY
import json, os, sys
import torch
from PIL import Image
work = sys.argv[1]
sys.path.insert(0, sys.argv[2])
from vit_files import *
from torchvision.models.vision_transformer import VisionTransformer
expected = {}
for line in open(os.path.join(work, "logits.jsonl")):
    record = json.loads(line)
    expected[record["path"]] = torch.tensor(record["logits"])
paths = sorted(expected)
mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
def images(paths):
    return torch.stack([(torch.tensor(list(Image.open(p).getdata()), dtype=torch.float32).view(32, 32, 3)
                         .permute(2, 0, 1) / 255 - mean) / std for p in paths])
def close(a, b, tol):
    diff = (a - b).abs().max().item()
    assert diff <= tol, f"max abs diff {diff} > {tol}"
def torchvision_from(timm_state, config):
    model = VisionTransformer(**config).eval()
    model.load_state_dict(to_torchvision_keys(timm_state))
    return model
$1
print("ok")
PY
}

output=$(judge "
module = torch.jit.load(os.path.join(work, 'model.pt'))
names = [n for n, _ in module.named_parameters()]
assert 'blocks.1.attn.qkv.weight' in names and 'pos_embed' in names, names
extra = {'vit.json': ''}
torch.jit.load(os.path.join(work, 'model.pt'), _extra_files=extra)
assert json.loads(extra['vit.json'])['class_names'] == ['cat', 'dog', 'bird', 'fish', 'frog']
with torch.no_grad():
    close(module(images(paths)), torch.stack([expected[p] for p in paths]), 1e-5)  # batch of 7
    close(module(images(paths[:1]))[0], expected[paths[0]], 1e-5)                 # batch of 1
" 2>&1)
check "TorchScript: torch.jit.load in Python, timm's names, the settings inside, vit's logits for batches of 7 and 1" $? "$output"

output=$(judge "
config = json.load(open(os.path.join(work, 'timm', 'config.json')))
args = config['model_args']
assert config['pretrained_cfg']['label_names'] == ['cat', 'dog', 'bird', 'fish', 'frog']
assert config['pretrained_cfg']['crop_pct'] == 1.0 and config['pretrained_cfg']['input_size'] == [3, 32, 32]
state, _ = read_safetensors(os.path.join(work, 'timm', 'model.safetensors'))
model = torchvision_from(state, dict(image_size=args['img_size'], patch_size=args['patch_size'],
                                     num_layers=args['depth'], num_heads=args['num_heads'],
                                     hidden_dim=args['embed_dim'], mlp_dim=int(args['embed_dim'] * args['mlp_ratio']),
                                     num_classes=args['num_classes']))
with torch.no_grad():
    close(model(images(paths)), torch.stack([expected[p] for p in paths]), 1e-4)
" 2>&1)
check "timm folder: read by Python into torchvision's ViT, it gives vit's logits" $? "$output"

output=$(judge "
config = json.load(open(os.path.join(work, 'hf', 'config.json')))
preprocessor = json.load(open(os.path.join(work, 'hf', 'preprocessor_config.json')))
assert config['id2label'] == {'0': 'cat', '1': 'dog', '2': 'bird', '3': 'fish', '4': 'frog'}
assert config['layer_norm_eps'] == 1e-6 and preprocessor['image_mean'] == [0.485, 0.456, 0.406]
state, _ = read_safetensors(os.path.join(work, 'hf', 'model.safetensors'))
assert 'vit.encoder.layer.0.attention.attention.query.weight' in state
model = torchvision_from(from_hf_keys(state), dict(image_size=config['image_size'], patch_size=config['patch_size'],
                                                   num_layers=config['num_hidden_layers'],
                                                   num_heads=config['num_attention_heads'],
                                                   hidden_dim=config['hidden_size'],
                                                   mlp_dim=config['intermediate_size'], num_classes=5))
with torch.no_grad():
    close(model(images(paths)), torch.stack([expected[p] for p in paths]), 1e-4)
" 2>&1)
check "Hugging Face folder: read by Python into torchvision's ViT, it gives vit's logits" $? "$output"

# Round trip: vit -> HF -> vit (the timm export is a vit weights file itself) gives the very same tensors.
"$vit" export "$work/hf" --out "$work/back" --format timm --quiet
output=$(judge "
original, _ = read_safetensors(os.path.join(work, 'model.safetensors'))
back, metadata = read_safetensors(os.path.join(work, 'back', 'model.safetensors'))
assert metadata['format'] == 'vit-toolkit' and sorted(back) == sorted(original)
assert all(torch.equal(back[k], original[k]) for k in original)
" 2>&1)
check "round trip vit -> Hugging Face -> vit is bit-identical" $? "$output"

expect "an existing output is not replaced" 2 "model.pt' already exists; pass --force" \
  -- "$vit" export "$work/model.safetensors" --out "$work/model.pt"
expect "--force replaces it" 0 "wrote TorchScript file" \
  -- "$vit" export "$work/model.safetensors" --out "$work/model.pt" --force
expect "TorchScript cannot be exported again" 2 "model.pt' is a TorchScript file; this needs weights" -- "$vit" export "$work/model.pt" --out "$work/again.pt"
expect "a folder format needs a folder" 2 "is a file; --format hf writes a folder" \
  -- "$vit" export "$work/model.safetensors" --out "$work/model.pt" --format hf
expect "export for another image size" 0 "wrote TorchScript file" \
  -- "$vit" export "$work/model.safetensors" --out "$work/model48.pt" --image-size 48
expect "the resized export classifies at its size" 0 "\"label\"" \
  -- "$vit" classify "$work/model48.pt" "$work/images/0.png" --format json
expect "help lists the formats" 0 "torchscript.*safetensors.*hf" -- "$vit" export --help

finish
