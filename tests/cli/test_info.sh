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
expect "unknown preset" 2 "unknown model 'vit_bsae_patch16_224': neither one of vit's presets" \
  -- "$vit" info vit_bsae_patch16_224
# timm's registered architectures by name: the family's options, timm's parameter counts and preprocessing.
expect "DeiT-III by name" 0 "options +layer scale \(init 1e-06\)" -- "$vit" info deit3_small_patch16_224
expect "DeiT-III position embedding" 0 "\(position embedding on the patches only\)" -- "$vit" info deit3_small_patch16_224
expect "DeiT distilled" 0 "parameters +87,338,192" -- "$vit" info deit_base_distilled_patch16_224
expect "SigLIP attention pooling" 0 "pooling +map" -- "$vit" info vit_base_patch16_siglip_224
expect "AIMv2 options" 0 "RMSNorm eps 1e-05" -- "$vit" info aimv2_large_patch14_224
expect "with a pretrained tag" 0 "ImageNet|mean \[0\.485, 0\.456, 0\.406\]" -- "$vit" info deit_small_patch16_224.fb_in1k
expect "unsupported architecture" 2 "architecture 'vit_dwee_patch16_reg1_gap_256': timm option attn_layer = \"diff\" is not supported" \
  -- "$vit" info vit_dwee_patch16_reg1_gap_256
expect "list" 0 "timm's Vision Transformer architectures \(170 of 173 supported\)" -- "$vit" info --list
expect "list marks the unsupported" 0 "vit_dlittle_patch16_reg1_gap_256 +not supported: attn_layer" -- "$vit" info --list
expect "list as json" 0 '"name": "vit_so400m_patch14_siglip_378"' -- "$vit" info --list --format json
expect "MODEL or --list" 2 "MODEL \(or --list\) is required" -- "$vit" info
expect "unknown format" 2 "--format: xml not in \{text,json\}" -- "$vit" info vit_base_patch16_224 --format xml
printf 'not a model' >"$work/broken.safetensors"
expect "damaged weights file" 2 "broken.safetensors': header length [0-9]+ exceeds the limit" \
  -- "$vit" info "$work/broken.safetensors"
head -c 100 "$reference_dir/torchvision_vit.safetensors" >"$work/truncated.safetensors"
expect "truncated weights file" 2 "truncated.safetensors': header length [0-9]+ runs past the end of the file \(100 bytes\)" \
  -- "$vit" info "$work/truncated.safetensors"

finish
