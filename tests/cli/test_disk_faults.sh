#!/usr/bin/env bash
# A full disk, a read-only file system and a folder the user may not write to, while `vit train`, `vit export`
# and `vit dataset` write: a clear error naming the file and the reason, exit code 2, the files that were there
# before intact and no temporary file left behind.
# The disks are small tmpfs mounts in a mount namespace of the script's own (it re-runs itself under `unshare -m`),
# unmounted on exit. In a chroot (as fresh-debian.sh's) the root's propagation cannot be made private, so there the
# namespace keeps it. Mounting needs root: without it the script says so and skips.
# usage: test_disk_faults.sh VIT_BINARY PYTHON
set -uo pipefail
vit=$1
python=$2
here=$(cd "$(dirname "$0")" && pwd)
if [[ -z ${VIT_IN_OWN_MOUNTS:-} ]]; then
  for propagation in private unchanged; do
    if [[ $(id -u) == 0 ]] && unshare -m --propagation "$propagation" true 2>/dev/null; then
      VIT_IN_OWN_MOUNTS=1 exec unshare -m --propagation "$propagation" bash "$0" "$@"
    fi
  done
  echo "skip: needs root to mount small file systems (in a mount namespace of its own)"
  exit 77
fi
source "$here/lib.sh"
trap 'umount -l "$work/disk" 2>/dev/null; rm -rf "$work"' EXIT
chmod 755 "$work"  # the permission checks run as nobody, who must reach the files

complete() { "$python" "$here/check_files_complete.py" "$1"; }
# no_temporaries DIR: no file of an atomic write and no partial conversion left in DIR.
no_temporaries() { [[ -z $(find "$1" -name '.*.tmp.*' -o -name '.*.partial-*') ]]; }
# fill DIR: takes every free byte of DIR's file system.
fill() { cat /dev/zero >"$1/filler" 2>/dev/null; }

"$python" "$here/make_idx_dataset.py" "$work/idx" >/dev/null
"$vit" dataset fashion-mnist --source "$work/idx" --out "$work/data" >/dev/null 2>&1
model=(--model vit_mini_patch7_28 --embed-dim 96 --depth 2 --num-heads 2 -b 16 --threads 1 --workers 1)
"$vit" train "$work/data" --out "$work/trained" --epochs 1 "${model[@]}" >/dev/null 2>&1
weights=$work/trained/best.safetensors

# --- A full disk during training: the disk fills while the run is going, after its first checkpoint.
disk=$work/disk
mkdir -p "$disk"
mount -t tmpfs -o size=24m tmpfs "$disk"
"$vit" train "$work/data" --out "$disk/run" --epochs 100000 "${model[@]}" >"$work/full.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [[ -e $disk/run/last.safetensors ]] && break
  sleep 0.1
done
fill "$disk"
wait "$pid"
code=$?
[[ $code == 2 ]] && grep -Eq "cannot write '$disk/run/[^']+': No space left on device" "$work/full.log"
check "train on a full disk: exit 2, the file and 'No space left on device'" $? "exit $code: $(tail -5 "$work/full.log")"
complete "$disk/run" && no_temporaries "$disk/run"
check "train on a full disk: every checkpoint complete, no temporary file left" $? "$(ls -la "$disk/run")"
expect "train on a full disk: last.safetensors still loads" 0 "classes +10" -- "$vit" info "$disk/run/last.safetensors"
rm "$disk/filler"
interrupt_after_epoch "$work/resume.log" "$vit" train "$work/data" --out "$disk/run" --resume
grep -Eq "resuming at epoch [0-9]+" "$work/resume.log" && [[ $code == 130 ]]
check "train on a full disk: --resume continues once there is space" $? "exit $code: $(cat "$work/resume.log")"
rm -rf "$disk/run"

# --- A full disk during export and conversion: an earlier export is kept whole.
"$vit" export "$weights" --format torchscript --out "$disk/model.pt" >/dev/null 2>&1
before=$(sha256sum <"$disk/model.pt")
fill "$disk"
for format in torchscript onnx; do
  expect "export $format onto a full disk" 2 "cannot write '$disk/model.pt': No space left on device" \
    -- "$vit" export "$weights" --format "$format" --out "$disk/model.pt" --force
done
expect "export timm onto a full disk" 2 "$disk/timm.*No space left on device" \
  -- "$vit" export "$weights" --format timm --out "$disk/timm"
[[ $(sha256sum <"$disk/model.pt") == "$before" ]] && no_temporaries "$disk"
check "export onto a full disk: the earlier export is unchanged, no temporary file left" $? "$(ls -la "$disk")"
expect "dataset onto a full disk" 2 "$disk/data.*No space left on device" \
  -- "$vit" dataset fashion-mnist --source "$work/idx" --out "$disk/data"
[[ ! -e $disk/data ]] && no_temporaries "$disk"
check "dataset onto a full disk: no folder, no partial conversion left" $? "$(ls -la "$disk")"
umount "$disk"

# --- A read-only file system: refused with the reason, nothing touched.
mount -t tmpfs -o size=8m tmpfs "$disk"
"$vit" export "$weights" --format torchscript --out "$disk/model.pt" >/dev/null 2>&1
mkdir "$disk/run"
before=$(sha256sum <"$disk/model.pt")
mount -o remount,ro "$disk"
expect "export onto a read-only file system" 2 "cannot write '$disk/model.pt': Read-only file system" \
  -- "$vit" export "$weights" --format torchscript --out "$disk/model.pt" --force
expect "train into a read-only file system" 2 "$disk/run.*Read-only file system" \
  -- "$vit" train "$work/data" --out "$disk/run" --epochs 1 "${model[@]}"
expect "dataset onto a read-only file system" 2 "$disk/data.*Read-only file system" \
  -- "$vit" dataset fashion-mnist --source "$work/idx" --out "$disk/data"
[[ $(sha256sum <"$disk/model.pt") == "$before" ]]
check "read-only file system: the earlier export is unchanged" $?
umount "$disk"

# --- A folder the user may not write to (root's, mode 755), as the user nobody.
mkdir -p "$work/locked"
chmod 755 "$work/locked"
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
expect "export into a folder without write permission" 2 "cannot write '$work/locked/model.pt': Permission denied" \
  -- "${as_nobody[@]}" "$vit" export "$weights" --format torchscript --out "$work/locked/model.pt"
expect "train into a folder without write permission" 2 "$work/locked/run.*Permission denied" \
  -- "${as_nobody[@]}" "$vit" train "$work/data" --out "$work/locked/run" --epochs 1 "${model[@]}"
[[ -z $(ls -A "$work/locked") ]]
check "no permission: nothing written" $?

finish
