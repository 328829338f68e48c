"""Checks that every file under a folder is complete, as a user would find it after a crash: each safetensors
file has a whole header and exactly the data it declares, JSON parses, metrics.csv has whole rows, PNG pictures
and TorchScript (zip) archives verify. Temporary files of an atomic write (".NAME.tmp.PID.N") and a conversion's
partial folder (".NAME.partial-PID-N") are allowed: they are never under a final name. ONNX files are left to
`vit info`. Prints each incomplete file and exits 1 if there is one.

usage: check_files_complete.py FOLDER
"""
import json
import os
import struct
import sys
import zipfile

from PIL import Image


def check_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    assert 8 + length + end == len(data), f"data section of {len(data) - 8 - length} bytes, header says {end}"


def check_csv(path):
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines and lines[0].startswith("epoch,"), "no header"
    for line in lines[1:]:
        assert len(line.split(",")) == len(lines[0].split(",")), f"partial row: {line}"


def check(path):
    name = os.path.basename(path)
    if name.endswith(".safetensors"):
        check_safetensors(path)
    elif name.endswith(".json"):
        with open(path) as f:
            json.load(f)
    elif name.endswith(".csv"):
        check_csv(path)
    elif name.endswith(".png"):
        with Image.open(path) as image:
            image.verify()
    elif name.endswith(".pt") or zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None, "a damaged member"


def main():
    bad = 0
    for folder, dirs, files in os.walk(sys.argv[1]):
        dirs[:] = [d for d in dirs if ".partial-" not in d]  # a conversion in progress, never a final name
        for name in files:
            if name.startswith(".") and ".tmp." in name:
                continue
            path = os.path.join(folder, name)
            try:
                check(path)
            except Exception as e:  # noqa: BLE001 - any failure to read is an incomplete file
                print(f"incomplete: {path}: {e}")
                bad += 1
    sys.exit(1 if bad else 0)


main()
