// Reading format and size from header bytes: images OpenCV encodes itself, handcrafted headers (bombs, rare
// layouts), and truncated, damaged or foreign bytes. Every call gets a heap buffer of exactly its size, so
// AddressSanitizer catches a read past the end.

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "data/image_decode.h"
#include "data/image_header.h"
#include "tests/catch.h"

namespace vit::data {
namespace {

using Bytes = std::vector<uint8_t>;
using vit::test::Contains;

Bytes encode(const cv::Mat& image, const std::string& extension, const std::vector<int>& params = {}) {
  Bytes bytes;
  REQUIRE(cv::imencode(extension, image, bytes, params));
  return bytes;
}

// Noise, so that no encoder can shrink the image to a trivial stream.
cv::Mat noise(int rows, int cols, int type) {
  cv::Mat image(rows, cols, type);
  cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(CV_MAT_DEPTH(type) == CV_16U ? 65536 : 256));
  return image;
}

ImageHeader read(const Bytes& bytes) { return read_image_header(bytes.data(), bytes.size()); }

// The first `length` bytes in a buffer of their own.
Bytes prefix(const Bytes& bytes, size_t length) { return Bytes(bytes.begin(), bytes.begin() + length); }

std::string fourcc(const Bytes& bytes, size_t offset) {
  return bytes.size() < offset + 4 ? "" : std::string(bytes.begin() + offset, bytes.begin() + offset + 4);
}

void put(Bytes& out, uint32_t value, int count, bool big_endian) {
  for (int i = 0; i < count; ++i) out.push_back(uint8_t(value >> (8 * (big_endian ? count - 1 - i : i))));
}

void put(Bytes& out, const std::string& text) { out.insert(out.end(), text.begin(), text.end()); }

void put(Bytes& out, std::initializer_list<uint8_t> bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); }

// Where `pattern` first occurs in `bytes`; bytes.size() when it does not.
size_t find(const Bytes& bytes, std::initializer_list<uint8_t> pattern) {
  return size_t(std::search(bytes.begin(), bytes.end(), pattern.begin(), pattern.end()) - bytes.begin());
}

Bytes splice(const Bytes& bytes, size_t at, const Bytes& inserted) {
  Bytes out(bytes.begin(), bytes.begin() + at);
  out.insert(out.end(), inserted.begin(), inserted.end());
  out.insert(out.end(), bytes.begin() + at, bytes.end());
  return out;
}

// A valid header yields a real format with positive sizes; anything else yields Unknown with zero sizes.
bool well_formed(const ImageHeader& header) {
  if (header.format == ImageFormat::Unknown) return header.width == 0 && header.height == 0;
  return header.width > 0 && header.height > 0;
}

// An uncompressed 8-bit grayscale TIFF: one IFD right after the header, sizes as `size_type` (3 SHORT, 4 LONG).
Bytes handmade_tiff(bool big_endian, uint32_t size_type, uint32_t width, uint32_t height) {
  Bytes out;
  put(out, big_endian ? std::string("MM\0*", 4) : std::string("II*\0", 4));
  put(out, 8, 4, big_endian);
  const uint32_t pixels = 8 + 2 + 9 * 12 + 4;
  put(out, 9, 2, big_endian);
  auto entry = [&](uint32_t tag, uint32_t type, uint32_t value) {
    put(out, tag, 2, big_endian);
    put(out, type, 2, big_endian);
    put(out, 1, 4, big_endian);
    if (type == 3) {  // left-justified in the 4-byte field
      put(out, value, 2, big_endian);
      put(out, 0, 2, big_endian);
    } else {
      put(out, value, 4, big_endian);
    }
  };
  entry(256, size_type, width);
  entry(257, size_type, height);
  entry(258, 3, 8);               // BitsPerSample
  entry(259, 3, 1);               // Compression: none
  entry(262, 3, 1);               // Photometric: BlackIsZero
  entry(273, 4, pixels);          // StripOffsets
  entry(277, 3, 1);               // SamplesPerPixel
  entry(278, 4, height);          // RowsPerStrip
  // The pixels only for sizes a decoder may read: a huge declared size must be refused from the header alone (its
  // product, 32-bit wrapped, once made this test write 3.3 GB it never needed).
  const uint64_t pixel_count = uint64_t{width} * height;
  const bool with_pixels = pixel_count <= (1u << 20);
  entry(279, 4, with_pixels ? static_cast<uint32_t>(pixel_count) : 0);  // StripByteCounts
  put(out, 0, 4, big_endian);                                           // no next IFD
  for (uint64_t i = 0; with_pixels && i < pixel_count; ++i) out.push_back(uint8_t(i * 7));
  return out;
}

// A 24-bit BMP with the 12-byte OS/2 core header.
Bytes handmade_core_bmp(uint16_t width, uint16_t height) {
  const uint32_t row = (3 * width + 3) / 4 * 4;
  Bytes out;
  put(out, "BM");
  put(out, 26 + row * height, 4, false);
  put(out, 0, 4, false);
  put(out, 26, 4, false);  // pixel data offset
  put(out, 12, 4, false);
  put(out, width, 2, false);
  put(out, height, 2, false);
  put(out, 1, 2, false);   // planes
  put(out, 24, 2, false);  // bits per pixel
  out.resize(out.size() + row * height, 0x80);
  return out;
}

const std::vector<std::pair<std::string, ImageFormat>> kFormats = {{".jpg", ImageFormat::Jpeg},
                                                                   {".png", ImageFormat::Png},
                                                                   {".bmp", ImageFormat::Bmp},
                                                                   {".tiff", ImageFormat::Tiff},
                                                                   {".webp", ImageFormat::WebP}};

}  // namespace

TEST_CASE("images OpenCV encodes read back with their format and size", "[header]") {
  // Width != height everywhere, so swapped sizes fail; the long sides cross byte boundaries in packed fields.
  for (const cv::Size size : {cv::Size(37, 23), cv::Size(1000, 3), cv::Size(3, 1000)}) {
    for (const int type : {CV_8UC1, CV_8UC3, CV_8UC4}) {
      for (const auto& [extension, format] : kFormats) {
        if (extension == ".jpg" && type == CV_8UC4) continue;  // JPEG has no alpha
        CAPTURE(extension, type, size.width, size.height);
        const Bytes bytes = encode(noise(size.height, size.width, type), extension);
        const ImageHeader header = read(bytes);
        CHECK(header.format == format);
        CHECK(header.width == size.width);
        CHECK(header.height == size.height);
      }
    }
  }
  CHECK(to_string(read(encode(noise(23, 37, CV_8UC3), ".jpg")).format) == "JPEG");
  CHECK(to_string(ImageFormat::Png) == "PNG");
  CHECK(to_string(ImageFormat::Bmp) == "BMP");
  CHECK(to_string(ImageFormat::Tiff) == "TIFF");
  CHECK(to_string(ImageFormat::WebP) == "WebP");
  CHECK(to_string(ImageFormat::Unknown) == "unknown");
}

TEST_CASE("16-bit PNG and TIFF, progressive JPEG", "[header]") {
  for (const int type : {CV_16UC1, CV_16UC3}) {
    for (const std::string extension : {".png", ".tiff"}) {
      CAPTURE(extension, type);
      const ImageHeader header = read(encode(noise(23, 37, type), extension));
      CHECK(header.format == (extension == ".png" ? ImageFormat::Png : ImageFormat::Tiff));
      CHECK(header.width == 37);
      CHECK(header.height == 23);
    }
  }
  const Bytes progressive = encode(noise(23, 37, CV_8UC3), ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  REQUIRE(find(progressive, {0xFF, 0xC2}) < progressive.size());  // SOF2: progressive Huffman
  const ImageHeader header = read(progressive);
  CHECK(header.format == ImageFormat::Jpeg);
  CHECK(header.width == 37);
  CHECK(header.height == 23);
}

TEST_CASE("WebP: lossy VP8, lossless VP8L and extended VP8X first chunks", "[header]") {
  // OpenCV writes lossless WebP unless given a quality of at most 100; lossy with alpha takes the extended format.
  CHECK(fourcc(encode(noise(23, 37, CV_8UC3), ".webp"), 12) == "VP8L");
  const std::vector<int> lossy = {cv::IMWRITE_WEBP_QUALITY, 90}, lossless = {cv::IMWRITE_WEBP_QUALITY, 101};
  for (const cv::Size size : {cv::Size(37, 23), cv::Size(1000, 3), cv::Size(3, 1000)}) {
    for (const auto& [type, params, chunk] :
         {std::make_tuple(CV_8UC3, lossy, "VP8 "), std::make_tuple(CV_8UC3, lossless, "VP8L"),
          std::make_tuple(CV_8UC4, lossy, "VP8X")}) {
      CAPTURE(chunk, size.width, size.height);
      const Bytes bytes = encode(noise(size.height, size.width, type), ".webp", params);
      CHECK(fourcc(bytes, 12) == chunk);
      const ImageHeader header = read(bytes);
      CHECK(header.format == ImageFormat::WebP);
      CHECK(header.width == size.width);
      CHECK(header.height == size.height);
    }
  }
}

TEST_CASE("a header claiming a huge image reads back its claim, so a bomb is detectable", "[header]") {
  Bytes png;
  put(png, "\x89PNG\r\n\x1a\n");
  put(png, 13, 4, true);
  put(png, "IHDR");
  put(png, 100000, 4, true);
  put(png, 100000, 4, true);
  put(png, {8, 2, 0, 0, 0});  // depth, colour type, compression, filter, interlace
  put(png, 0, 4, true);       // CRC (not checked)
  ImageHeader header = read(png);
  CHECK(header.format == ImageFormat::Png);
  CHECK(header.width == 100000);
  CHECK(header.height == 100000);

  // The largest WebP canvas, 2^24 on each side: 2^48 pixels still fits the int64 sizes.
  Bytes webp;
  put(webp, "RIFF");
  put(webp, 22, 4, false);
  put(webp, "WEBPVP8X");
  put(webp, 10, 4, false);
  put(webp, 0, 4, false);
  put(webp, 0xFFFFFF, 3, false);
  put(webp, 0xFFFFFF, 3, false);
  header = read(webp);
  CHECK(header.format == ImageFormat::WebP);
  CHECK(header.width == 16777216);
  CHECK(header.height == 16777216);

  // The same 1 -> 65535 edit in a real JPEG's frame header.
  Bytes jpeg = encode(noise(23, 37, CV_8UC1), ".jpg");
  const size_t sof = find(jpeg, {0xFF, 0xC0});
  REQUIRE(sof + 9 <= jpeg.size());
  std::fill(jpeg.begin() + long(sof) + 5, jpeg.begin() + long(sof) + 9, 0xFF);
  header = read(jpeg);
  CHECK(header.format == ImageFormat::Jpeg);
  CHECK(header.width == 65535);
  CHECK(header.height == 65535);
}

TEST_CASE("rarer layouts that OpenCV decodes read the same size it decodes", "[header]") {
  // Big- and little-endian TIFF, sizes as SHORT and as LONG.
  for (const bool big_endian : {false, true}) {
    for (const uint32_t type : {3u, 4u}) {
      CAPTURE(big_endian, type);
      const Bytes tiff = handmade_tiff(big_endian, type, 37, 23);
      const cv::Mat decoded = cv::imdecode(tiff, cv::IMREAD_UNCHANGED);
      CHECK(decoded.size() == cv::Size(37, 23));
      const ImageHeader header = read(tiff);
      CHECK(header.format == ImageFormat::Tiff);
      CHECK(header.width == 37);
      CHECK(header.height == 23);
    }
  }

  // BMP with the 12-byte OS/2 core header.
  const Bytes core = handmade_core_bmp(37, 23);
  CHECK(cv::imdecode(core, cv::IMREAD_UNCHANGED).size() == cv::Size(37, 23));
  ImageHeader header = read(core);
  CHECK(header.format == ImageFormat::Bmp);
  CHECK(header.width == 37);
  CHECK(header.height == 23);

  // A top-down BMP: the height negated.
  Bytes top_down = encode(noise(23, 37, CV_8UC3), ".bmp");
  top_down[22] = uint8_t(-23);  // little-endian int32 -23: e9 ff ff ff
  top_down[23] = top_down[24] = top_down[25] = 0xFF;
  CHECK(cv::imdecode(top_down, cv::IMREAD_UNCHANGED).size() == cv::Size(37, 23));
  header = read(top_down);
  CHECK(header.format == ImageFormat::Bmp);
  CHECK(header.width == 37);
  CHECK(header.height == 23);
}

TEST_CASE("JPEG: metadata, fill bytes and tables before the frame header are skipped", "[header]") {
  const Bytes jpeg = encode(noise(23, 37, CV_8UC3), ".jpg");
  REQUIRE(jpeg.size() > 4);
  CHECK(fourcc(jpeg, 6) == "JFIF");  // OpenCV writes SOI then a JFIF APP0 segment

  // A 3000-byte EXIF APP1 segment right after SOI.
  Bytes exif = {0xFF, 0xE1};
  put(exif, 3002, 2, true);
  put(exif, std::string("Exif\0\0", 6));
  exif.resize(2 + 3002, 0xFF);  // payload bytes that look like fill and markers must not be parsed
  const Bytes with_exif = splice(jpeg, 2, exif);
  CHECK(cv::imdecode(with_exif, cv::IMREAD_UNCHANGED).size() == cv::Size(37, 23));
  ImageHeader header = read(with_exif);
  CHECK(header.format == ImageFormat::Jpeg);
  CHECK(header.width == 37);
  CHECK(header.height == 23);

  // Fill bytes, a TEM marker, stray bytes, and DHT/JPG/DAC segments whose payloads would read as 5x7 frames.
  Bytes decoys = {0xFF, 0xFF, 0xFF, 0x01, 0x12, 0x34};
  for (const uint8_t marker : {0xC4, 0xC8, 0xCC})
    put(decoys, {0xFF, marker, 0x00, 0x0B, 0x08, 0x00, 0x07, 0x00, 0x05, 0x01, 0x01, 0x11, 0x00});
  header = read(splice(jpeg, 2, decoys));
  CHECK(header.format == ImageFormat::Jpeg);
  CHECK(header.width == 37);
  CHECK(header.height == 23);

  // libjpeg decodes past stray bytes between segments, so the header must be read past them too. (OpenCV 4.6 does
  // decode this one, printing "Corrupt JPEG data: 3 extraneous bytes before marker 0xdb"; not repeated here.)
  const size_t after_app0 = 4 + size_t(jpeg[4] << 8 | jpeg[5]);
  header = read(splice(jpeg, after_app0, {0x00, 0x11, 0x22}));
  CHECK(header.format == ImageFormat::Jpeg);
  CHECK(header.width == 37);
  CHECK(header.height == 23);

  // An APP0 length below 2, which libjpeg reads on from (so OpenCV decodes such a file): read on here too.
  Bytes short_app0 = jpeg;
  short_app0[4] = short_app0[5] = 0;
  header = read(short_app0);
  CHECK(header.format == ImageFormat::Jpeg);
  CHECK(header.width == 37);
  CHECK(header.height == 23);

  // Scan data or the end of the image before any frame header: no size to read.
  CHECK(read(Bytes{0xFF, 0xD8, 0xFF, 0xD9}).format == ImageFormat::Unknown);
  CHECK(read(Bytes{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00}).format ==
        ImageFormat::Unknown);
}

TEST_CASE("every truncation of a real image gives Unknown or the right size, never a read past the end", "[header]") {
  const std::vector<std::pair<std::string, Bytes>> images = {
      {"jpeg", encode(noise(23, 37, CV_8UC3), ".jpg")},
      {"png", encode(noise(23, 37, CV_8UC1), ".png")},
      {"bmp", encode(noise(23, 37, CV_8UC3), ".bmp")},
      {"tiff", encode(noise(23, 37, CV_8UC1), ".tiff")},
      {"webp lossy", encode(noise(23, 37, CV_8UC3), ".webp", {cv::IMWRITE_WEBP_QUALITY, 90})},
      {"webp lossless", encode(noise(23, 37, CV_8UC3), ".webp", {cv::IMWRITE_WEBP_QUALITY, 101})},
      {"webp extended", encode(noise(23, 37, CV_8UC4), ".webp", {cv::IMWRITE_WEBP_QUALITY, 90})}};
  for (const auto& [name, bytes] : images) {
    CAPTURE(name, bytes.size());
    const ImageHeader full = read(bytes);
    REQUIRE(full.width == 37);
    size_t first_complete = 0;  // the shortest prefix that reads the size
    std::vector<size_t> wrong;
    for (size_t length = 0; length < bytes.size(); ++length) {
      const ImageHeader header = read(prefix(bytes, length));
      if (header.format == ImageFormat::Unknown && header.width == 0 && header.height == 0) continue;
      if (header.format != full.format || header.width != full.width || header.height != full.height)
        wrong.push_back(length);
      else if (first_complete == 0)
        first_complete = length;
    }
    CHECK(wrong.empty());
    if (name == "png") CHECK(first_complete == 24);
    if (name == "bmp") CHECK(first_complete == 26);
    if (name == "webp lossy" || name == "webp extended") CHECK(first_complete == 30);
    if (name == "webp lossless") CHECK(first_complete == 25);
    // JPEG: through the component count of the frame header (FF C0, length, precision, height, width, count).
    if (name == "jpeg") CHECK(first_complete == find(bytes, {0xFF, 0xC0}) + 10);
    // TIFF: libtiff writes the first IFD after the pixel data, so only (nearly) the whole file has the size.
    if (name == "tiff") CHECK(first_complete > 37 * 23);
  }
  CHECK(read_image_header(nullptr, 0).format == ImageFormat::Unknown);
  CHECK(read_image_header(nullptr, 100).format == ImageFormat::Unknown);
}

TEST_CASE("damaged headers, random bytes and text give Unknown or a positive size, never a crash", "[header]") {
  std::mt19937 random(12345);
  // Random bytes written over the start of real images: whatever they claim, the answer stays well formed.
  std::vector<Bytes> images;
  for (const auto& [extension, format] : kFormats) images.push_back(encode(noise(23, 37, CV_8UC3), extension));
  images.push_back(encode(noise(23, 37, CV_8UC3), ".webp", {cv::IMWRITE_WEBP_QUALITY, 90}));
  images.push_back(encode(noise(23, 37, CV_8UC4), ".webp", {cv::IMWRITE_WEBP_QUALITY, 90}));
  size_t malformed = 0;
  for (const Bytes& image : images) {
    for (int trial = 0; trial < 2000; ++trial) {
      Bytes damaged = prefix(image, std::min<size_t>(image.size(), 8 + random() % 200));
      for (int flips = 1 + random() % 4; flips > 0; --flips) damaged[random() % damaged.size()] = uint8_t(random());
      if (!well_formed(read(damaged))) ++malformed;
    }
  }
  CHECK(malformed == 0);

  size_t recognised = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    Bytes bytes(random() % 100);
    for (auto& byte : bytes) byte = uint8_t(random());
    if (read(bytes).format != ImageFormat::Unknown) ++recognised;
  }
  CHECK(recognised == 0);

  using namespace std::string_literals;  // the texts hold NUL bytes
  for (const std::string& text :
       {""s, "hello"s, "<!DOCTYPE html><html></html>"s, "GIF89a\x25\x00\x17\x00"s, "BM"s, "\x89PNG\r\n\x1a\n"s,
        "RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0"s, "RIFF\x24\0\0\0WEBPVP8 \x10\0\0\0\0\0\0\x9d\x01\x2a"s}) {
    CAPTURE(text.size());
    const Bytes bytes(text.begin(), text.end());
    const ImageHeader header = read(bytes);
    CHECK(header.format == ImageFormat::Unknown);
    CHECK(header.width == 0);
    CHECK(header.height == 0);
  }
  // Signatures whose size fields are missing, zero or out of range.
  Bytes tiff;
  put(tiff, std::string("II*\0", 4));
  put(tiff, 0xFFFFFFF0, 4, false);  // an IFD offset far past the end
  CHECK(read(tiff).format == ImageFormat::Unknown);
  Bytes zero_png;
  put(zero_png, "\x89PNG\r\n\x1a\n");
  put(zero_png, 13, 4, true);
  put(zero_png, "IHDR");
  put(zero_png, 0, 4, true);
  put(zero_png, 23, 4, true);
  CHECK(read(zero_png).format == ImageFormat::Unknown);
}

TEST_CASE("sides whose product overflows are refused by the pixel limit", "[header][decode]") {
  // Found by fuzz_image_decode: a TIFF of 4177526796 x 2374864269 pixels made width * height overflow int64_t
  // (undefined behaviour, and a product that could wrap below the limit).
  const Bytes tiff = handmade_tiff(false, 4, 4177526796u, 2374864269u);
  CHECK(read(tiff).width == 4177526796);
  CHECK_THROWS_WITH(
      decode_image(tiff, "huge.tiff", DecodeOptions{}),
      Contains("'huge.tiff': TIFF of 4177526796x2374864269 pixels exceeds the limit of 100000000 pixels"));
}

}  // namespace vit::data
