#!/usr/bin/env bash
# End-to-end checks of `vit classify`: every kind of model file (a vit weights file, a TorchScript file made in
# Python, one with vit metadata), every kind of input (files, folders, standard input), every output format
# parsed back, and the exit-status contract with good and bad files mixed. The fixtures
# (make_classify_fixtures.py) have answers known by construction.
# usage: test_classify.sh VIT_BINARY PYTHON
set -uo pipefail
vit=$1
python=$2
here=$(dirname "$0")
source "$here/lib.sh"

"$python" "$here/make_classify_fixtures.py" "$work" || { echo "FAIL fixtures"; exit 1; }
data=$work/data
plain=(--mean 0 0 0 --std 1 1 1 --crop-pct 1 --labels "$work/labels.txt")

# compare_json NAME PYTHON_CHECK < JSON lines: PYTHON_CHECK sees `lines` (parsed) and `expected`, and asserts.
compare_json() {
  local name=$1 code=$2 output
  output=$("$python" -c "
import json, math, sys
expected = json.load(open('$work/expected.json'))
by_path = {image['path']: image for image in expected['images']}
lines = [json.loads(line) for line in sys.stdin]
$code
print('checked', len(lines))
" 2>&1)
  check "$name" $? "$output"
}

# The brightness TorchScript made in Python: logits as computed in Python, to 1e-5.
"$vit" classify "$work/brightness.pt" "$data" "${plain[@]}" --format json --logits -k 3 >"$work/plain.jsonl"
check "python TorchScript: exit 0" $?
compare_json "python TorchScript: logits and predictions match Python" "
assert len(lines) == len(expected['images']), lines
for line in lines:
    want = by_path[line['path']]
    assert line['error'] is None
    assert all(abs(a - b) <= 1e-5 * max(1, abs(b)) for a, b in zip(line['logits'], want['logits'])), (line, want)
    assert line['predictions'][0]['index'] == want['predicted'], line
    assert [p['label'] for p in line['predictions']] == [['dark', 'mid', 'bright'][p['index']] for p in line['predictions']]
    probs = [p['probability'] for p in line['predictions']]
    assert abs(sum(probs) - 1) < 1e-5 and probs == sorted(probs, reverse=True), probs
    softmax = [math.exp(l) / sum(math.exp(m) for m in want['logits']) for l in want['logits']]
    assert all(abs(p['probability'] - softmax[p['index']]) < 1e-5 for p in line['predictions'])
" <"$work/plain.jsonl"
"$python" -c "
import json, sys
paths = [json.loads(l)['path'] for l in open('$work/plain.jsonl')]
assert paths == sorted(paths), paths
assert any(p.endswith('sub/b3.png') for p in paths)
" 
check "folders are searched recursively, in sorted order" $?

"$vit" classify "$work/brightness_vit.pt" "$data" --format json --logits -k 3 >"$work/exported.jsonl"
check "TorchScript with vit metadata: exit 0" $?
compare_json "TorchScript with vit metadata: its own preprocessing and labels give the same answers" "
plain = [json.loads(line) for line in open('$work/plain.jsonl')]
assert len(lines) == len(plain) == 10
for mine, theirs in zip(lines, plain):
    assert [p['label'] for p in mine['predictions']] == [p['label'] for p in theirs['predictions']], (mine, theirs)
    assert all(abs(a['probability'] - b['probability']) < 1e-5 for a, b in zip(mine['predictions'], theirs['predictions']))
" <"$work/exported.jsonl"
expect "TorchScript with vit metadata: its image size is fixed" 2 "was exported for 16x16 images" \
  -- "$vit" classify "$work/brightness_vit.pt" "$data" --image-size 32
expect "python TorchScript: default names without --labels" 0 "\"label\":\"0\"" \
  -- "$vit" classify "$work/brightness.pt" "$data/dark/d1.png" --mean 0 0 0 --std 1 1 1 --format json
printf 'a\nb\n' >"$work/two_labels.txt"
expect "a labels file that does not fit" 2 "returns 3 scores per image, but its labels name 2 classes" \
  -- "$vit" classify "$work/brightness.pt" "$data/dark/d1.png" --labels "$work/two_labels.txt"
expect "a labels file for a model with its own class names must match their count" 2 "has 2 names, but model .* has 3 classes" \
  -- "$vit" classify "$work/brightness_vit.pt" "$data/dark/d1.png" --labels "$work/two_labels.txt"

# Output formats.
expect "text: a table per image" 0 "d1.png
   1  dark +[0-9.]+%
   2  mid +[0-9.]+%" -- "$vit" classify "$work/brightness.pt" "$data/dark/d1.png" "${plain[@]}" -k 2
"$vit" classify "$work/brightness.pt" "$data" "$work/bad/empty.png" "${plain[@]}" --format csv -k 2 --logits \
  >"$work/out.csv" 2>/dev/null
"$python" -c "
import csv
rows = list(csv.DictReader(open('$work/out.csv')))
assert list(rows[0].keys()) == ['path', 'rank', 'index', 'label', 'probability', 'error', 'logits'], rows[0]
ok = [r for r in rows if not r['error']]
assert len(ok) == 2 * 10 and [r['rank'] for r in ok[:2]] == ['1', '2'], rows
assert any(r['path'].endswith('m2, copy.png') for r in ok), 'a comma in a path survives quoting'
assert all(len(r['logits'].split()) == 3 for r in ok)
for first, second in zip(ok[::2], ok[1::2]):
    assert first['path'] == second['path'] and float(first['probability']) >= float(second['probability'])
bad = [r for r in rows if r['error']]
assert len(bad) == 1 and bad[0]['path'].endswith('empty.png') and bad[0]['rank'] == '', bad
"
check "csv: one row per image and rank, errors in their own row, parsed back" $?

# Inputs: standard input, mixed with arguments, in order; bad files get their own records.
printf '%s\n' "$data/mid/m1.png" "$work/bad/text.png" "$work/missing.png" |
  "$vit" classify "$work/brightness.pt" "$data/dark/d1.png" - "$work/bad" "$work/empty_folder" "${plain[@]}" \
    --format json >"$work/mixed.jsonl" 2>"$work/mixed.err"
code=$?
check "some inputs failed: exit 1" $([[ $code == 1 ]]; echo $?) "exit $code"
compare_json "every input has one record, in order, with the reason for each failure" "
got = [(l['path'].split('/')[-1], l['error']) for l in lines]
names = [g[0] for g in got]
assert names == ['d1.png', 'm1.png', 'text.png', 'missing.png', 'empty.png', 'huge.png', 'text.png', 'truncated.png', 'empty_folder'], names
errors = dict(zip(names, [g[1] for g in got]))
assert errors['d1.png'] is None and errors['m1.png'] is None
assert all(e for n, e in got[2:]), got
assert 'pixel' in errors['huge.png'] and 'no images' in errors['empty_folder'], errors
for l in lines:
    assert (l['error'] is None) == (len(l['predictions']) > 0)
" <"$work/mixed.jsonl"
grep -q "7 of 9 inputs could not be classified" "$work/mixed.err"
check "the summary counts the failures" $? "$(cat "$work/mixed.err")"
expect "top-k is capped at the class count" 0 "\"predictions\":\[(\{[^}]*\},?){3}\]" \
  -- "$vit" classify "$work/brightness.pt" "$data/dark/d1.png" "${plain[@]}" --format json -k 10

# A vit weights file from a short training run.
"$vit" train "$data" --out "$work/run" --epochs 1 --model vit_mini_patch7_28 --in-chans 3 --embed-dim 32 --depth 1 \
  --num-heads 2 -b 4 --threads 1 --workers 1 --quiet >/dev/null 2>&1
check "a small model trains" $?
"$vit" classify "$work/run/last.safetensors" "$data" --format json -k 3 --logits -b 3 >"$work/weights.jsonl"
check "weights file: exit 0" $?
compare_json "weights file: probabilities are the softmax of the logits, sorted, labelled as the model's classes" "
assert len(lines) == 10
for line in lines:
    probs = [p['probability'] for p in line['predictions']]
    assert abs(sum(probs) - 1) < 1e-5 and probs == sorted(probs, reverse=True), probs
    assert sorted(p['label'] for p in line['predictions']) == ['bright', 'dark', 'mid']
    assert all(['bright', 'dark', 'mid'][p['index']] == p['label'] for p in line['predictions'])
    z = sum(math.exp(v) for v in line['logits'])
    assert all(abs(math.exp(line['logits'][p['index']]) / z - p['probability']) < 1e-5 for p in line['predictions'])
" <"$work/weights.jsonl"
"$vit" classify "$work/run/last.safetensors" "$data" --format json -k 3 --logits -b 1 --workers 2 >"$work/weights_b1.jsonl"
"$python" -c "
import json
a = [json.loads(l) for l in open('$work/weights.jsonl')]
b = [json.loads(l) for l in open('$work/weights_b1.jsonl')]
assert [x['path'] for x in a] == [x['path'] for x in b]
assert all(max(abs(u - v) for u, v in zip(x['logits'], y['logits'])) < 1e-4 for x, y in zip(a, b))
"
check "weights file: the batch size and worker count do not change the answers" $?

# Attention maps: one picture per classified image, in input order, three panels under a caption; refused for
# TorchScript, and a head that does not exist is named.
"$vit" classify "$work/run/last.safetensors" "$data" "$work/missing.png" --attention-maps "$work/maps" \
  --format csv >/dev/null 2>&1
code=$?
[[ $code == 1 ]]
check "attention maps: exit 1 with one missing input" $? "exit $code"
"$python" - "$work/maps" "$work/weights.jsonl" <<'PY'
import json, os, sys
import numpy as np
from PIL import Image
names = sorted(os.listdir(sys.argv[1]))
inputs = [json.loads(l)["path"] for l in open(sys.argv[2])]
# Ten pictures for the ten images (none for the missing file), numbered in input order.
assert names == [f"{i + 1:05d}-{os.path.splitext(os.path.basename(p))[0]}.png" for i, p in enumerate(inputs)], names
picture = np.asarray(Image.open(os.path.join(sys.argv[1], names[0])).convert("RGB"))
assert picture.shape == (56 + 224, 3 * 224 + 2 * 8, 3), picture.shape
# The image panel shows the (uniform) fixture image; the heat panels are coloured, not copies of it.
image, heat = picture[56:, :224].astype(int), picture[56:, 232:456].astype(int)
assert np.ptp(image.reshape(-1, 3), axis=0).max() <= 2, "a uniform input image stays uniform"
assert np.abs(heat - image).max() > 30, "the heat map is blended over the image"
assert (picture[:56] < 128).any(), "the caption band has text"
PY
check "attention maps: a picture per image, three panels, heat over the image" $?
expect "attention maps: one head" 0 "dark|mid|bright" \
  -- "$vit" classify "$work/run/last.safetensors" "$data/dark/d1.png" --attention-maps "$work/maps_head" --attention-head 1
[[ -s $work/maps_head/00001-d1.png ]]
check "attention maps: --attention-head writes its picture" $?
expect "attention maps: a head that does not exist" 2 "--attention-head 2: the model has 2 heads \(0 to 1\)" \
  -- "$vit" classify "$work/run/last.safetensors" "$data" --attention-maps "$work/maps2" --attention-head 2
expect "attention maps: --attention-head alone is refused" 2 "--attention-head needs --attention-maps DIR" \
  -- "$vit" classify "$work/run/last.safetensors" "$data" --attention-head 1
expect "attention maps: TorchScript is refused" 2 "is TorchScript \(vit export\); attention maps need a vit weights file" \
  -- "$vit" classify "$work/brightness_vit.pt" "$data" --attention-maps "$work/maps3"
expect "attention maps: a file in the folder's place is refused, naming the option" 2 \
  "--attention-maps '$work/run/last.safetensors': expected a folder, and a file of that name exists" \
  -- "$vit" classify "$work/run/last.safetensors" "$data" --attention-maps "$work/run/last.safetensors"
expect "attention maps: an existing picture is not replaced" 0 "00001-d1.png' exists; not replaced" \
  -- "$vit" classify "$work/run/last.safetensors" "$data/dark/d1.png" --attention-maps "$work/maps_head"

# The same weights as a timm folder and a Hugging Face folder (written in Python): the same answers. (HF's
# preprocessing has no crop fraction; the fixture images are uniform, so cropping changes nothing.)
"$python" "$here/vit_to_checkpoints.py" "$work/run/last.safetensors" "$work/ckpt"
check "checkpoints written in Python" $?
for layout in timm hf; do
  "$vit" classify "$work/ckpt/$layout" "$data" --format json -k 3 --logits >"$work/$layout.jsonl"
  check "$layout folder: exit 0" $?
  compare_json "$layout folder: the same labels and logits as the vit weights file" "
ours = [json.loads(l) for l in open('$work/weights.jsonl')]
assert len(lines) == len(ours) == 10
for a, b in zip(lines, ours):
    assert a['path'] == b['path'] and [p['label'] for p in a['predictions']] == [p['label'] for p in b['predictions']]
    assert max(abs(x - y) for x, y in zip(a['logits'], b['logits'])) < 1e-4, (a, b)
" <"$work/$layout.jsonl"
done
expect "info describes a timm folder" 0 "model .*timm \(timm checkpoint\)" -- "$vit" info "$work/ckpt/timm"

# The timm folder in a Hugging Face cache laid out as huggingface_hub leaves it (blobs, relative symlinks in
# snapshots/<commit>, refs/main without a newline): named by its Hub id, it gives the same answers, offline.
commit=0123456789abcdef0123456789abcdef01234567
repo="$work/hf-cache/models--someone--tiny-vit"
mkdir -p "$repo/blobs" "$repo/refs" "$repo/snapshots/$commit"
printf '%s' "$commit" >"$repo/refs/main"
for file in config.json model.safetensors; do
  cp "$work/ckpt/timm/$file" "$repo/blobs/blob-$file"
  ln -s "../../blobs/blob-$file" "$repo/snapshots/$commit/$file"
done
HF_HUB_CACHE="$work/hf-cache" HF_HUB_OFFLINE=1 "$vit" classify someone/tiny-vit "$data" --format json -k 3 --logits \
  >"$work/hub.jsonl"
check "Hub id from the cache: exit 0" $?
compare_json "Hub id from the cache: the same labels and logits as the timm folder" "
ours = [json.loads(l) for l in open('$work/timm.jsonl')]
assert len(lines) == len(ours) == 10
for a, b in zip(lines, ours):
    assert a['path'] == b['path'] and a['predictions'] == b['predictions'] and a['logits'] == b['logits'], (a, b)
" <"$work/hub.jsonl"
expect "info names the Hub id" 0 "model +hf-hub:someone/tiny-vit@main \(timm checkpoint\)" \
  -- env HF_HUB_CACHE="$work/hf-cache" HF_HUB_OFFLINE=1 "$vit" info hf-hub:someone/tiny-vit@main
expect "a Hub id not in the cache" 2 "'someone/other' is neither an existing file or folder nor a model in the Hugging Face cache" \
  -- env HF_HUB_CACHE="$work/hf-cache" HF_HUB_OFFLINE=1 "$vit" classify someone/other "$data"
expect "info describes a Hugging Face folder" 0 "classes +3: bright, dark, mid" -- "$vit" info "$work/ckpt/hf"
rm "$work/ckpt/hf/config.json"
expect "a Hugging Face folder without config.json" 2 "holds Hugging Face Vision Transformer tensors but has no config.json" \
  -- "$vit" classify "$work/ckpt/hf" "$data"

# Model and usage errors: exit 2 with a message naming the problem.
expect "missing model" 2 "model '$work/none.pt' does not exist" -- "$vit" classify "$work/none.pt" "$data"
expect "an image is not a model" 2 "neither a safetensors file \(vit, timm or Hugging Face layout\) nor a TorchScript file" \
  -- "$vit" classify "$data/dark/d1.png" "$data"
expect "a folder without model.safetensors is not a model" 2 "holds no model.safetensors" -- "$vit" classify "$data" "$data"
expect "a TorchScript that rejects the input" 2 "rgb_only.pt' failed on a batch of shape \[1, 1, 224, 224\]: RuntimeError: select\(\): index 1 out of range" \
  -- "$vit" classify "$work/rgb_only.pt" "$data/dark/d1.png" --mean 0 --std 1
expect "--mean that does not fit the model's channels" 2 "mean needs 3 values \(one per channel\), got 1" \
  -- "$vit" classify "$work/brightness_vit.pt" "$data/dark/d1.png" --mean 0 --std 1
expect "--top-k must be positive" 2 "--top-k: expected a whole number >= 1, got '0'$" -- "$vit" classify "$work/brightness.pt" "$data" -k 0
expect "unknown format" 2 "--format: yaml not in" -- "$vit" classify "$work/brightness.pt" "$data" --format yaml
expect "no inputs" 2 "INPUT is required" -- "$vit" classify "$work/brightness.pt"
expect "--mean with two values" 2 "--mean: give 1 value \(grayscale\) or 3 \(RGB\), got 2" \
  -- "$vit" classify "$work/brightness.pt" "$data" --mean 0 0
expect "--mean and --std of different lengths" 2 "std" \
  -- "$vit" classify "$work/brightness.pt" "$data" --mean 0 0 0 --std 1
expect "help describes the exit status" 0 "Exit status: 0 when every input was classified" -- "$vit" classify --help

# A feature model (num_classes 0: timm's DINOv2, SigLIP, ...) has no classes to give: classify and eval say so
# rather than answering with an empty ranking.
"$vit" info vit_tiny_patch16_224 --format json >"$work/tiny_info.json" &&
  "$python" "$here/../../bench/make_random_weights.py" "$work/tiny_info.json" "$work/features.safetensors" \
    num_classes=0 depth=1 image_size=28 patch_size=7
check "a feature model's weights file is written" $?
image=$(find "$data" -name '*.png' | sort | head -n 1)
expect "classify refuses a model without a classifier head" 2 \
  "features.safetensors' has no classification head \(num_classes 0\): it gives features, not classes" \
  -- "$vit" classify "$work/features.safetensors" "$image"
expect "eval refuses a model without a classifier head" 2 \
  "features.safetensors' has no classification head \(num_classes 0\): it gives features, not classes" \
  -- "$vit" eval "$work/features.safetensors" "$data"

finish
