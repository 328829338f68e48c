#!/usr/bin/env bash
# End-to-end checks of `vit export --format onnx`, with ONNX Runtime as the judge: the exported file, run by
# ONNX Runtime on the images `vit classify --logits` saw, gives its logits; the options (--opset, --batch,
# --external-data) show in the file as ONNX Runtime reads it; errors explain.
# usage: test_export_onnx.sh VIT_BINARY PYTHON NODE
set -uo pipefail
vit=$1
python=$2
node=$3
here=$(dirname "$0")
check_onnx=$here/../onnx/check_onnx.js
source "$here/lib.sh"

# A torchvision ViT written by Python (5 classes, 32x32 RGB) and seven images that need no resize or crop.
"$python" "$here/make_export_fixtures.py" "$work" || { echo "FAIL fixtures"; exit 1; }
"$vit" classify "$work/model.safetensors" "$work/images" --format json --logits -k 1 >"$work/logits.jsonl"
check "the weights file classifies" $?
mkdir -p "$work/cases"

expect "export ONNX" 0 "wrote ONNX file \(opset 17, batch dynamic\)" \
  -- "$vit" export "$work/model.safetensors" --out "$work/model.onnx" --format onnx
expect "--opset 13, a fixed batch of 7" 0 "wrote ONNX file \(opset 13, batch 7\)" \
  -- "$vit" export "$work/model.safetensors" --out "$work/cases/fixed.onnx" --format onnx --opset 13 --batch 7
expect "--external-data" 0 "weights in '.*external.onnx.data'" \
  -- "$vit" export "$work/model.safetensors" --out "$work/cases/external.onnx" --format onnx --external-data
cp "$work/model.onnx" "$work/cases/dynamic.onnx"

# The three files run in ONNX Runtime on the same images, as vit preprocessed them, against vit's logits.
"$python" - "$work" "$here/../reference" <<'PY'
import json, os, sys
import torch
from PIL import Image
work = sys.argv[1]
sys.path.insert(0, sys.argv[2])
from vit_files import write_safetensors
records = sorted((json.loads(line) for line in open(os.path.join(work, "logits.jsonl"))), key=lambda r: r["path"])
mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
images = torch.stack([(torch.tensor(list(Image.open(r["path"]).getdata()), dtype=torch.float32).view(32, 32, 3)
                       .permute(2, 0, 1) / 255 - mean) / std for r in records])
write_safetensors(os.path.join(work, "cases", "vit.safetensors"),
                  {"images": images, "logits": torch.tensor([r["logits"] for r in records])}, {})
labels = ["cat", "dog", "bird", "fish", "frog"]
cases = [dict(name=name, onnx=name + ".onnx", tensors="vit.safetensors", opset=opset, dynamic_batch=dynamic,
              external_data=name == "external", label_names=labels)
         for name, opset, dynamic in [("dynamic", 17, True), ("fixed", 13, False), ("external", 17, True)]]
json.dump(cases, open(os.path.join(work, "cases", "cases.json"), "w"))
PY
check "the test's cases are written" $?
output=$("$node" "$check_onnx" "$work/cases" 2>&1)
check "ONNX Runtime gives vit classify's logits: dynamic batch (7 and 1), opset 13 with batch 7, external data" $? "$output"

# describe FILE PYTHON_EXPRESSION: the expression over `d`, check_onnx.js's description of FILE, must hold.
describe() {
  "$node" "$check_onnx" --describe "$1" >"$work/describe.json" 2>&1 &&
    "$python" -c "import json,sys; d = json.load(open(sys.argv[1])); assert $2, d" "$work/describe.json"
}
output=$(describe "$work/model.onnx" "d['inputs'] == ['images'] and d['input_shape'] == ['batch', 3, 32, 32] and \
d['outputs'] == ['logits'] and d['ran']['output'] == [2, 5] and d['ran']['finite'] and d['opset'] == 17 and d['ir_version'] == 8 and \
'LayerNormalization' in d['op_types'] and 'Erf' in d['op_types'] and 'Shape' not in d['op_types'] and \
d['producer'].startswith('vit ') and json.loads(d['metadata']['label_names']) == ['cat', 'dog', 'bird', 'fish', 'frog'] \
and json.loads(d['metadata']['input_size']) == [3, 32, 32] and d['metadata']['interpolation'] == 'bilinear' and \
json.loads(d['metadata']['mean']) == [0.485, 0.456, 0.406] and json.loads(d['metadata']['vit.json'])['config']['depth'] == 2" 2>&1)
check "ONNX Runtime reads the interface, and the metadata holds the preprocessing and class names" $? "$output"
output=$(describe "$work/cases/fixed.onnx" "d['input_shape'] == [7, 3, 32, 32] and d['ran']['output'] == [7, 5] and \
'LayerNormalization' not in d['op_types'] and d['opset'] == 13 and d['ir_version'] == 7" 2>&1)
check "--opset 13 spells LayerNorm out; --batch 7 is fixed" $? "$output"
"$vit" export "$work/model.safetensors" --out "$work/model48.onnx" --format onnx --image-size 48 --quiet
output=$(describe "$work/model48.onnx" "d['input_shape'] == ['batch', 3, 48, 48] and d['ran']['output'] == [2, 5] and \
json.loads(d['metadata']['input_size']) == [3, 48, 48]" 2>&1)
check "--image-size 48: the graph takes 48x48 images (position embedding resampled)" $? "$output"
[[ -s $work/cases/external.onnx.data && $(stat -c %s "$work/cases/external.onnx") -lt 20000 ]]
check "--external-data: a small graph file and the weights beside it" $? "$(ls -l "$work/cases")"

expect "vit info describes its ONNX export" 0 "model .*model.onnx \(ONNX file, opset 17, dynamic batch\)" \
  -- "$vit" info "$work/model.onnx"
expect "... with the weights file's classes" 0 "classes +5: cat, dog, bird, fish, frog" -- "$vit" info "$work/model.onnx"
expect "vit classify explains that it does not run ONNX" 2 "is an ONNX file: .*ONNX Runtime" \
  -- "$vit" classify "$work/model.onnx" "$work/images/0.png"

expect "an opset above 17 is refused, with the reason" 2 "opset 18 is not available.*ONNX 1.12.*up to 17" \
  -- "$vit" export "$work/model.safetensors" --out "$work/x.onnx" --format onnx --opset 18
expect "an opset below 13 is refused" 2 "opset 12 is too old.*13 to 17" \
  -- "$vit" export "$work/model.safetensors" --out "$work/x.onnx" --format onnx --opset 12
expect "--batch 0 is refused" 2 "positive batch size or 'dynamic', got '0'" \
  -- "$vit" export "$work/model.safetensors" --out "$work/x.onnx" --format onnx --batch 0
expect "--batch x is refused" 2 "positive batch size or 'dynamic', got 'x'" \
  -- "$vit" export "$work/model.safetensors" --out "$work/x.onnx" --format onnx --batch x
expect "--opset is for ONNX only" 2 "are for --format onnx" \
  -- "$vit" export "$work/model.safetensors" --out "$work/x.pt" --opset 13
expect "... even at its default value" 2 "are for --format onnx" \
  -- "$vit" export "$work/model.safetensors" --out "$work/x.pt" --opset 17
[[ ! -e $work/x.onnx && ! -e $work/x.pt ]]
check "refusals write nothing" $?
cp "$work/model.onnx" "$work/before.onnx"
expect "an existing ONNX file is not replaced" 2 "model.onnx' already exists; pass --force" \
  -- "$vit" export "$work/model.safetensors" --out "$work/model.onnx" --format onnx --opset 13
cmp -s "$work/model.onnx" "$work/before.onnx"
check "... and is untouched" $?
: >"$work/cases/stale.onnx.data"
expect "nor its data file" 2 "stale.onnx.data' already exists; pass --force" \
  -- "$vit" export "$work/model.safetensors" --out "$work/cases/stale.onnx" --format onnx
"$vit" export "$work/model.safetensors" --out "$work/cases/stale.onnx" --format onnx --force --quiet
[[ -s $work/cases/stale.onnx && ! -e $work/cases/stale.onnx.data ]]
check "--force: an inline export removes the data file of the one it replaces" $? "$(ls -l "$work/cases")"
expect "--out a folder is refused" 2 "is a folder; --format onnx writes one file" \
  -- "$vit" export "$work/model.safetensors" --out "$work/cases" --format onnx
"$vit" export "$work/model.safetensors" --out "$work/model.pt" --quiet
expect "TorchScript cannot be exported to ONNX" 2 "model.pt' is a TorchScript file; this needs weights" \
  -- "$vit" export "$work/model.pt" --out "$work/y.onnx" --format onnx
expect "help lists ONNX and its options" 0 "--opset INT +ONNX: the operator set, 13 to 17 \(default 17" -- "$vit" export --help

finish
