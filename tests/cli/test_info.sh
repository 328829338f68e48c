#!/usr/bin/env bash
# End-to-end checks of `vit --help`, `--version` and `vit info`, as a user runs them.
# usage: test_info.sh VIT_BINARY REFERENCE_DIR   (REFERENCE_DIR holds torchvision_vit.safetensors)
set -uo pipefail
vit=$1
reference_dir=$2
source "$(dirname "$0")/lib.sh"

expect "help lists info" 0 "info +Describe a model" -- "$vit" --help
expect "version" 0 "^vit [0-9]+\.[0-9]+\.[0-9]+" -- "$vit" --version
expect "no subcommand is a usage error" 2 "subcommand" -- "$vit"
expect "ViT-B/16 parameter count" 0 "parameters +86,567,656 \(86\.6 M\)" -- "$vit" info vit_base_patch16_224
expect "ViT-B/16 compute" 0 "compute +17\.5[0-9] GMACs per image" -- "$vit" info vit_base_patch16_224
expect "ViT-B/16 preprocessing" 0 "resize short side to 248 \(bicubic\), center crop 224, mean \[0\.5, 0\.5, 0\.5\]" \
  -- "$vit" info vit_base_patch16_224
expect "ViT-L/16 parameter count" 0 "parameters +304,326,632" -- "$vit" info vit_large_patch16_224
expect "small preset is grayscale" 0 "input +1 channel, 28x28 pixels" -- "$vit" info vit_mini_patch7_28
expect "weights file: classes from metadata" 0 "classes +10: class 0, class 1, class 2" \
  -- "$vit" info "$reference_dir/torchvision_vit.safetensors"
expect "weights file: architecture" 0 "encoder +3 blocks, width 64, 4 heads of 16, MLP 128" \
  -- "$vit" info "$reference_dir/torchvision_vit.safetensors"
expect "json output" 0 '"parameters": 86567656' -- "$vit" info vit_base_patch16_224 --format json
expect "unknown preset" 2 "'vit_bsae_patch16_224' is neither a model preset nor an existing file" \
  -- "$vit" info vit_bsae_patch16_224
expect "unknown format" 2 "--format: xml not in \{text,json\}" -- "$vit" info vit_base_patch16_224 --format xml
printf 'not a model' >"$work/broken.safetensors"
expect "damaged weights file" 2 "broken.safetensors': header length [0-9]+ exceeds the limit" \
  -- "$vit" info "$work/broken.safetensors"
head -c 100 "$reference_dir/torchvision_vit.safetensors" >"$work/truncated.safetensors"
expect "truncated weights file" 2 "truncated.safetensors': header length [0-9]+ runs past the end of the file \(100 bytes\)" \
  -- "$vit" info "$work/truncated.safetensors"

finish
