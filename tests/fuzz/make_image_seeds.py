"""Writes the seed corpora of the image and IDX parsers: small images in every format vit decodes (PNG 8- and 16-bit,
grey, palette and RGBA; JPEG with and without an EXIF orientation; BMP; TIFF; WebP lossy and lossless), the same
truncated, and Fashion-MNIST-shaped IDX files plain and gzipped. The image_decode seeds carry one leading byte,
which that target reads as the channel count to decode to. Run with Debian's python3 (PIL); the output is committed
as tests/fuzz/corpus.

usage: make_image_seeds.py CORPUS_DIR
"""
import gzip
import io
import os
import struct
import sys

from PIL import Image

corpus = sys.argv[1]


def write(target, name, data):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)


def encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


rgb = Image.new("RGB", (12, 8))
rgb.putdata([(x * 20, y * 30, (x + y) * 10) for y in range(8) for x in range(12)])
exif = Image.Exif()
exif[0x0112] = 6  # orientation: rotated 90 degrees
images = {
    "rgb.png": encoded(rgb, "PNG"),
    "grey16.png": encoded(rgb.convert("L").convert("I").point(lambda v: v * 256), "PNG"),
    "palette.png": encoded(rgb.convert("P"), "PNG"),
    "rgba.png": encoded(rgb.convert("RGBA"), "PNG"),
    "rgb.jpg": encoded(rgb, "JPEG", quality=80),
    "grey.jpg": encoded(rgb.convert("L"), "JPEG"),
    "rotated.jpg": encoded(rgb, "JPEG", exif=exif.tobytes()),
    "rgb.bmp": encoded(rgb, "BMP"),
    "grey.tif": encoded(rgb.convert("L"), "TIFF"),
    "rgb.tif": encoded(rgb, "TIFF", compression="tiff_deflate"),
    "lossy.webp": encoded(rgb, "WEBP", quality=70),
    "lossless.webp": encoded(rgb.convert("RGBA"), "WEBP", lossless=True),
}
for name, data in images.items():
    write("image_header", name, data)
    write("image_header", "truncated_" + name, data[: len(data) // 2])
    write("image_decode", name, b"\x00" + data)  # RGB
    write("image_decode", "grey_" + name, b"\x01" + data)  # grayscale
    write("image_decode", "truncated_" + name, b"\x00" + data[: len(data) * 2 // 3])


def idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


images_file = idx(0x803, (3, 4, 5), bytes(range(60)))
labels_file = idx(0x801, (3,), bytes([0, 7, 9]))
write("idx", "images", images_file)
write("idx", "labels", labels_file)
write("idx", "images.gz", gzip.compress(images_file, mtime=0))
write("idx", "labels.gz", gzip.compress(labels_file, mtime=0))
write("idx", "truncated_images", images_file[:30])
