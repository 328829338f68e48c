#include "data/image_header.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>

namespace vit::data {
namespace {

// The encoded bytes with bounds-checked reads. Every access goes through has(), so no parse below can touch
// memory past data + size however its offsets were computed; a read out of range yields 0.
struct Bytes {
  const uint8_t* data;
  size_t size;

  bool has(size_t offset, size_t count) const { return offset <= size && count <= size - offset; }
  uint8_t u8(size_t offset) const { return has(offset, 1) ? data[offset] : 0; }
  // An unsigned integer of `count` (at most 4) bytes at `offset`, most significant byte first when big_endian.
  uint32_t uint(size_t offset, size_t count, bool big_endian) const {
    if (!has(offset, count)) return 0;
    uint32_t value = 0;
    for (size_t i = 0; i < count; ++i) value = (value << 8) | data[offset + (big_endian ? i : count - 1 - i)];
    return value;
  }
  bool matches(size_t offset, const char* text, size_t count) const {
    return has(offset, count) && std::memcmp(data + offset, text, count) == 0;
  }
};

// No decoder accepts a zero-sized image (libjpeg rejects JPEG's height-0-then-DNL form too), so it is damage.
ImageHeader found(ImageFormat format, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) return {};
  return {format, width, height};
}

// JPEG: a chain of marker segments from SOI; the size is in the first start-of-frame segment, which comes after
// tables and metadata (EXIF, ICC profiles, comments), so the others are skipped by their length fields.
ImageHeader read_jpeg(const Bytes& b) {
  if (b.u8(0) != 0xFF || b.u8(1) != 0xD8) return {};
  size_t pos = 2;
  while (pos < b.size) {
    // libjpeg skips stray bytes between segments with only a warning, so a bomb could hide behind some: skip too.
    if (b.u8(pos) != 0xFF) {
      ++pos;
      continue;
    }
    while (b.u8(pos) == 0xFF) ++pos;  // any number of 0xFF fill bytes may precede a marker
    const uint8_t marker = b.u8(pos++);
    if (marker == 0x00) continue;                                        // a stuffed 0xFF data byte
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // TEM, RSTn: no length, no payload
    // A second SOI, EOI or scan data before any frame header: not a decodable JPEG.
    if (marker == 0xD8 || marker == 0xD9 || marker == 0xDA) return {};
    const uint32_t length = b.uint(pos, 2, true);  // counts its own two bytes but not the marker
    // SOF0..SOF15 share C0..CF with DHT (C4), JPG (C8) and DAC (CC), which are tables, not frames.
    const bool frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame) {
      // Length, precision (1 byte), height (2), width (2), component count, 3 bytes per component.
      const uint32_t components = b.u8(pos + 7);
      if (components == 0 || length != 8 + 3 * components || !b.has(pos, 8)) return {};
      return found(ImageFormat::Jpeg, b.uint(pos + 5, 2, true), b.uint(pos + 3, 2, true));
    }
    // libjpeg takes a length below 2 as 2 and reads on (then skips the stray bytes), so this does too.
    pos += std::max<uint32_t>(length, 2);
  }
  return {};
}

// PNG: the signature, then IHDR must be the first chunk: length 13, type, big-endian width and height.
ImageHeader read_png(const Bytes& b) {
  if (!b.matches(0, "\x89PNG\r\n\x1a\n", 8)) return {};
  if (b.uint(8, 4, true) != 13 || !b.matches(12, "IHDR", 4) || !b.has(16, 8)) return {};
  const uint32_t width = b.uint(16, 4, true), height = b.uint(20, 4, true);
  if (width > 0x7FFFFFFF || height > 0x7FFFFFFF) return {};  // the PNG spec caps both at 2^31 - 1
  return found(ImageFormat::Png, width, height);
}

// BMP: a 14-byte file header, then an info header that starts with its own size. The 12-byte OS/2 core header
// has unsigned 16-bit sizes; all longer ones (OS/2 2.x from 16 bytes, Windows' 40, 52, 56, 108, 124) have signed
// 32-bit sizes at the same place. OpenCV reads both kinds.
ImageHeader read_bmp(const Bytes& b) {
  if (!b.matches(0, "BM", 2)) return {};
  const uint32_t info_size = b.uint(14, 4, false);
  if (info_size == 12 && b.has(18, 4)) return found(ImageFormat::Bmp, b.uint(18, 2, false), b.uint(20, 2, false));
  if (info_size < 16 || !b.has(18, 8)) return {};
  const int64_t width = static_cast<int32_t>(b.uint(18, 4, false));
  const int64_t height = static_cast<int32_t>(b.uint(22, 4, false));
  // A negative height means rows stored top-down; the image is just as tall.
  return found(ImageFormat::Bmp, width, height < 0 ? -height : height);
}

// TIFF: a byte-order mark, the offset of the first image file directory (IFD), and in it 12-byte entries of
// tag, type, count and a 4-byte value; ImageWidth (256) and ImageLength (257) are SHORT or LONG.
ImageHeader read_tiff(const Bytes& b) {
  const bool big_endian = b.matches(0, "MM\0*", 4);
  if (!big_endian && !b.matches(0, "II*\0", 4)) return {};
  const size_t directory = b.uint(4, 4, big_endian);
  if (directory < 8 || !b.has(directory, 2)) return {};  // below 8 it would overlap the header
  const uint32_t entries = b.uint(directory, 2, big_endian);
  int64_t width = 0, height = 0;
  for (uint32_t i = 0; i < entries && (width == 0 || height == 0); ++i) {
    const size_t entry = directory + 2 + 12 * static_cast<size_t>(i);
    if (!b.has(entry, 12)) return {};
    const uint32_t tag = b.uint(entry, 2, big_endian), type = b.uint(entry + 2, 2, big_endian);
    if (tag != 256 && tag != 257) continue;
    // A value that fits sits at the start of the value field in the file's byte order, so a SHORT is its first
    // two bytes in either order.
    if (type != 3 && type != 4) return {};
    (tag == 256 ? width : height) = b.uint(entry + 8, type == 3 ? 2 : 4, big_endian);
  }
  return found(ImageFormat::Tiff, width, height);
}

// WebP: a RIFF container of type WEBP whose first chunk (fourcc at 12, size at 16, data from 20) says which
// bitstream follows: lossy VP8, lossless VP8L, or the extended VP8X header that leads animations and alpha.
ImageHeader read_webp(const Bytes& b) {
  if (!b.matches(0, "RIFF", 4) || !b.matches(8, "WEBP", 4)) return {};
  const uint32_t chunk_size = b.uint(16, 4, false);
  const size_t data = 20;
  if (b.matches(12, "VP8 ", 4)) {
    // A 3-byte frame tag, the key-frame start code, then 14-bit sizes; the top 2 bits are an upscaling hint.
    if (chunk_size < 10 || !b.matches(data + 3, "\x9d\x01\x2a", 3) || !b.has(data + 6, 4)) return {};
    return found(ImageFormat::WebP, b.uint(data + 6, 2, false) & 0x3FFF, b.uint(data + 8, 2, false) & 0x3FFF);
  }
  if (b.matches(12, "VP8L", 4)) {
    // A signature byte, then 32 bits from the lowest: width - 1 (14), height - 1 (14), alpha (1), version (3, 0).
    if (chunk_size < 5 || b.u8(data) != 0x2F || !b.has(data + 1, 4)) return {};
    const uint32_t bits = b.uint(data + 1, 4, false);
    if ((bits >> 29) != 0) return {};
    return found(ImageFormat::WebP, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
  }
  if (b.matches(12, "VP8X", 4)) {
    // Flags (1 byte), reserved (3), then 24-bit canvas width - 1 and height - 1: up to 2^24 each.
    if (chunk_size < 10 || !b.has(data + 4, 6)) return {};
    return found(ImageFormat::WebP, b.uint(data + 4, 3, false) + int64_t{1}, b.uint(data + 7, 3, false) + int64_t{1});
  }
  return {};
}

}  // namespace

std::string to_string(ImageFormat format) {
  switch (format) {
    case ImageFormat::Jpeg:
      return "JPEG";
    case ImageFormat::Png:
      return "PNG";
    case ImageFormat::Bmp:
      return "BMP";
    case ImageFormat::Tiff:
      return "TIFF";
    case ImageFormat::WebP:
      return "WebP";
    case ImageFormat::Unknown:
      break;
  }
  return "unknown";
}

ImageHeader read_image_header(const uint8_t* data, size_t size) {
  const Bytes bytes{data, data == nullptr ? 0 : size};
  // The signatures are distinct, so at most one reader recognises the bytes.
  for (ImageHeader (*read)(const Bytes&) : {read_jpeg, read_png, read_bmp, read_tiff, read_webp}) {
    const ImageHeader header = read(bytes);
    if (header.format != ImageFormat::Unknown) return header;
  }
  return {};
}

}  // namespace vit::data
