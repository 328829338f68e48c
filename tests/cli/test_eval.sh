#!/usr/bin/env bash
# End-to-end checks of `vit eval`: accuracy, loss, per-class metrics and the confusion matrix of a model whose
# answers are known by construction (make_classify_fixtures.py), in text, JSON and CSV; class matching by
# name; unreadable images; errors.
# usage: test_eval.sh VIT_BINARY PYTHON
set -uo pipefail
vit=$1
python=$2
here=$(dirname "$0")
source "$here/lib.sh"

"$python" "$here/make_classify_fixtures.py" "$work" || { echo "FAIL fixtures"; exit 1; }
data=$work/data
model=$work/brightness_vit.pt

"$vit" eval "$model" "$data" --plots "$work/plots" >/dev/null 2>&1
check "eval --plots: exit 0" $?
"$python" - "$work/plots/confusion.png" "$work/expected.json" <<'PY'
import json, sys
import numpy as np
from PIL import Image
picture = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(int)
confusion = json.load(open(sys.argv[2]))["confusion"]  # rows: true class
k, cell, top = len(confusion), 56, 56
# The grid starts after the class names (the picture may be wider than the grid needs, for its title): the first
# coloured pixel just below the grid's top edge, above the names' letters.
left = int(np.argmax((picture[top + 2] != 255).any(axis=1)))
assert 0 < left < picture.shape[1] - k * cell, left
def green(r, c):  # viridis: green grows with the value
    return picture[top + r * cell + 4: top + r * cell + 12, left + c * cell + 4: left + c * cell + 12, 1].mean()
for r, row in enumerate(confusion):
    shares = [v / sum(row) for v in row]
    order = sorted(range(k), key=lambda c: shares[c])
    greens = [green(r, c) for c in order]
    assert greens == sorted(greens), (r, shares, greens)  # brighter where the row's share is larger
    assert green(r, order[-1]) > green(r, order[0]) + 40, (r, shares)
PY
check "eval --plots: confusion.png shows each row's shares in order" $?
"$vit" eval "$model" "$data" --format json --confusion-csv "$work/confusion.csv" >"$work/report.json"
check "eval: exit 0" $?
output=$("$python" -c "
import json
r = json.load(open('$work/report.json'))
e = json.load(open('$work/expected.json'))
assert r['images'] == 10 and r['failed'] == 0, r
assert r['confusion'] == e['confusion'], r['confusion']
assert abs(r['top1'] - 0.7) < 1e-12 and r['top5'] == 1.0, r
assert abs(r['loss'] - e['loss']) < 1e-5, (r['loss'], e['loss'])
by_name = {c['name']: c for c in r['classes']}
# By hand from the confusion matrix: dark predicted 4 times (3 right), mid and bright 3 times (2 right each).
for name, precision, recall, support in (('dark', 3 / 4, 3 / 4, 4), ('mid', 2 / 3, 2 / 3, 3), ('bright', 2 / 3, 2 / 3, 3)):
    c = by_name[name]
    assert abs(c['precision'] - precision) < 1e-9 and abs(c['recall'] - recall) < 1e-9 and c['support'] == support, c
    assert abs(c['f1'] - 2 * precision * recall / (precision + recall)) < 1e-9, c
macro = (3 / 4 + 2 / 3 + 2 / 3) / 3
assert abs(r['macro_avg']['precision'] - macro) < 1e-9, r['macro_avg']
assert abs(r['weighted_avg']['recall'] - 0.7) < 1e-9, r['weighted_avg']
" 2>&1)
check "eval: accuracy, loss, per-class metrics and confusion matrix as computed by hand" $? "$output"
printf '%s\n' 'true\predicted,dark,mid,bright' 'dark,3,0,1' 'mid,1,2,0' 'bright,0,1,2' | diff - "$work/confusion.csv"
check "eval: the confusion matrix as CSV" $?
expect "eval: text report" 0 "top-1 +0\.7000.*
.*
.*
.*class +precision +recall +f1 +support
dark +0\.7500 +0\.7500 +0\.7500 +4" -- "$vit" eval "$model" "$data"
expect "eval: text confusion matrix" 0 "  0 dark +3 0 1" -- "$vit" eval "$model" "$data"

# The brightness model cannot tell an image from its mirror image: --tta hflip must leave its figures unchanged
# (that --tta changes a model's answer at all is checked in test_train.sh, against train's --val-tta).
"$vit" eval "$model" "$data" --tta hflip --format json >"$work/hflip.json" 2>/dev/null
"$python" -c "
import json
r, plain = json.load(open('$work/hflip.json')), json.load(open('$work/report.json'))
assert r['confusion'] == plain['confusion'] and abs(r['loss'] - plain['loss']) < 1e-5, (r, plain)
assert r['tta'] == 'hflip' and plain['tta'] == 'none', (r['tta'], plain['tta'])
"
check "eval --tta hflip: a mirror-invariant model's figures are unchanged" $? "$(cat "$work/hflip.json")"
expect "eval --tta names its values" 2 "--tta: flip not in \{none,hflip\}" -- "$vit" eval "$model" "$data" --tta flip

# A model trained on the folders' classes in another order: classes are matched by name, not position.
printf 'bright\nmid\ndark\n' >"$work/reordered.txt"
"$vit" eval "$work/brightness.pt" "$data" --mean 0 0 0 --std 1 1 1 --crop-pct 1 --labels "$work/reordered.txt" \
  --format json >"$work/reordered.json" 2>/dev/null
"$python" -c "
import json
r = json.load(open('$work/reordered.json'))
# The model's class 0 is now called 'bright' but still fires for dark images: dark images count as wrong.
assert r['classes'][0]['name'] == 'bright' and r['confusion'][2][0] == 3, r
"
check "eval: classes are matched to the model's by name" $? "$(cat "$work/reordered.json")"

# An unreadable image is left out, named, and makes the exit status 1.
cp "$work/bad/truncated.png" "$data/mid/broken.png"
expect "eval: an unreadable image is reported and left out" 1 "broken.png.*(1 of 11 images could not be read)?" \
  -- "$vit" eval "$model" "$data"
rm "$data/mid/broken.png"

mkdir -p "$work/other/dark" "$work/other/zebra"
cp "$data/dark/d1.png" "$work/other/dark/"
cp "$data/dark/d1.png" "$work/other/zebra/"
expect "eval: a class the model does not know is named" 2 "class folder 'zebra' .* is not one of the model's" \
  -- "$vit" eval "$model" "$work/other"
mkdir -p "$work/root"
mv "$data" "$work/root/val"
expect "eval: pointed at a dataset root, the error suggests val/" 2 "did you mean '$work/root/val'" \
  -- "$vit" eval "$model" "$work/root"
expect "eval: --confusion-csv into a missing folder is refused before evaluating" 2 \
  "--confusion-csv: folder '$work/nowhere' does not exist" \
  -- "$vit" eval "$model" "$work/other" --confusion-csv "$work/nowhere/c.csv"
cp "$model" "$work/weights_copy"
expect "eval: --confusion-csv onto a file that is no .csv is refused before evaluating" 2 \
  "--confusion-csv: expected a file name ending in .csv, got '$work/weights_copy'" \
  -- "$vit" eval "$model" "$work/other" --confusion-csv "$work/weights_copy"
cmp -s "$model" "$work/weights_copy"
check "eval: the file named by a refused --confusion-csv is untouched" $?
expect "eval: --plots naming a file is refused before evaluating" 2 \
  "--plots '$work/weights_copy': expected a folder, and a file of that name exists" \
  -- "$vit" eval "$model" "$work/other" --plots "$work/weights_copy"
"$vit" eval "$model" "$work/other" --plots "$work/weights_copy" 2>/dev/null | grep -q "top-1"
[[ $? -ne 0 ]]
check "eval: a refused --plots prints no report" $?
expect "eval: missing folder" 2 "does not exist" -- "$vit" eval "$model" "$work/nowhere"
expect "eval: help" 0 "confusion-csv" -- "$vit" eval --help

finish
