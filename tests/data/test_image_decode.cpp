// Decoding every format and colour case from images the tests encode themselves, and every way decoding fails.

#include <zlib.h>

#include <opencv2/imgcodecs.hpp>

#include "data/image_decode.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using vit::test::Contains;

namespace vit::data {
namespace {

std::vector<uint8_t> encode(const cv::Mat& image, const std::string& extension, const std::vector<int>& params = {}) {
  std::vector<uint8_t> bytes;
  REQUIRE(cv::imencode(extension, image, bytes, params));
  return bytes;
}

DecodeOptions rgb() { return {3, 100'000'000}; }
DecodeOptions gray() { return {1, 100'000'000}; }

void append_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void append_png_chunk(std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& data) {
  append_be32(png, static_cast<uint32_t>(data.size()));
  std::vector<uint8_t> body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  png.insert(png.end(), body.begin(), body.end());
  append_be32(png, static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
}

// A palette (colour type 3) PNG, which OpenCV cannot write: each pixel is an index into `palette`.
std::vector<uint8_t> palette_png(uint32_t width, uint32_t height, const std::vector<cv::Vec3b>& palette,
                                 const std::vector<uint8_t>& indices) {
  std::vector<uint8_t> png{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  std::vector<uint8_t> ihdr;
  append_be32(ihdr, width);
  append_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 3, 0, 0, 0});  // 8-bit indices, palette colour, deflate, no filter, no interlace
  append_png_chunk(png, "IHDR", ihdr);
  std::vector<uint8_t> plte;
  for (const auto& c : palette) plte.insert(plte.end(), {c[0], c[1], c[2]});  // RGB
  append_png_chunk(png, "PLTE", plte);
  std::vector<uint8_t> raw;
  for (uint32_t y = 0; y < height; ++y) {
    raw.push_back(0);  // filter type None
    raw.insert(raw.end(), indices.begin() + y * width, indices.begin() + (y + 1) * width);
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> idat(size);
  REQUIRE(compress(idat.data(), &size, raw.data(), static_cast<uLong>(raw.size())) == Z_OK);
  idat.resize(size);
  append_png_chunk(png, "IDAT", idat);
  append_png_chunk(png, "IEND", {});
  return png;
}

// Inserts an EXIF APP1 segment carrying only the orientation tag right after the JPEG's SOI marker.
std::vector<uint8_t> with_exif_orientation(std::vector<uint8_t> jpeg, uint16_t orientation) {
  const std::vector<uint8_t> app1{0xff,
                                  0xe1,
                                  0x00,
                                  0x22,  // APP1, length 34
                                  'E',
                                  'x',
                                  'i',
                                  'f',
                                  0,
                                  0,  // EXIF identifier
                                  'I',
                                  'I',
                                  0x2a,
                                  0x00,
                                  0x08,
                                  0x00,
                                  0x00,
                                  0x00,  // little-endian TIFF header, IFD at offset 8
                                  0x01,
                                  0x00,  // one entry
                                  0x12,
                                  0x01,
                                  0x03,
                                  0x00,
                                  0x01,
                                  0x00,
                                  0x00,
                                  0x00,  // tag 0x0112 Orientation, SHORT, count 1
                                  static_cast<uint8_t>(orientation),
                                  0x00,
                                  0x00,
                                  0x00,
                                  0x00,
                                  0x00,
                                  0x00,
                                  0x00};  // no next IFD
  jpeg.insert(jpeg.begin() + 2, app1.begin(), app1.end());
  return jpeg;
}

}  // namespace

TEST_CASE("every supported format decodes to RGB with the right pixels", "[decode]") {
  // OpenCV stores BGR: (255, 0, 0) is pure blue, and must come out as RGB (0, 0, 255).
  const cv::Mat blue(12, 20, CV_8UC3, cv::Scalar(255, 0, 0));
  for (const std::string ext : {".png", ".bmp", ".tiff", ".webp", ".jpg"}) {
    INFO(ext);
    const auto image = decode_image(encode(blue, ext), "blue" + ext, rgb());
    REQUIRE(image.type() == CV_8UC3);
    CHECK(image.size() == cv::Size(20, 12));
    const auto pixel = image.at<cv::Vec3b>(6, 10);
    const int tolerance = ext == ".jpg" || ext == ".webp" ? 3 : 0;  // lossy formats
    CHECK(std::abs(pixel[0] - 0) <= tolerance);
    CHECK(std::abs(pixel[1] - 0) <= tolerance);
    CHECK(std::abs(pixel[2] - 255) <= tolerance);
  }
}

TEST_CASE("colour and grayscale convert both ways", "[decode]") {
  const cv::Mat blue(4, 6, CV_8UC3, cv::Scalar(255, 0, 0));
  const auto as_gray = decode_image(encode(blue, ".png"), "blue.png", gray());
  REQUIRE(as_gray.type() == CV_8UC1);
  CHECK(as_gray.at<uint8_t>(0, 0) == 29);  // ITU-R BT.601 luma of pure blue: 0.114 * 255
  const cv::Mat mid(4, 6, CV_8UC1, cv::Scalar(77));
  const auto as_rgb = decode_image(encode(mid, ".png"), "mid.png", rgb());
  CHECK(as_rgb.at<cv::Vec3b>(1, 1) == cv::Vec3b(77, 77, 77));
  CHECK(decode_image(encode(mid, ".jpg"), "mid.jpg", gray()).type() == CV_8UC1);
}

TEST_CASE("16-bit images are scaled to 8 bits", "[decode]") {
  cv::Mat deep(2, 2, CV_16UC3, cv::Scalar(65535, 32896, 0));  // B, G, R
  for (const std::string ext : {".png", ".tiff"}) {
    INFO(ext);
    CHECK(decode_image(encode(deep, ext), "deep" + ext, rgb()).at<cv::Vec3b>(1, 1) == cv::Vec3b(0, 128, 255));
  }
}

TEST_CASE("transparent pixels are composited on white", "[decode]") {
  cv::Mat rgba(2, 2, CV_8UC4, cv::Scalar(10, 20, 30, 255));  // opaque
  rgba.at<cv::Vec4b>(0, 0) = cv::Vec4b(0, 0, 0, 0);          // fully transparent black
  rgba.at<cv::Vec4b>(0, 1) = cv::Vec4b(0, 0, 200, 128);      // half-transparent red
  for (const std::string ext : {".png", ".webp"}) {
    INFO(ext);
    const auto image = decode_image(encode(rgba, ext, {cv::IMWRITE_WEBP_QUALITY, 101}), "alpha" + ext, rgb());
    CHECK(image.at<cv::Vec3b>(0, 0) == cv::Vec3b(255, 255, 255));
    CHECK(image.at<cv::Vec3b>(1, 1) == cv::Vec3b(30, 20, 10));
    CHECK(image.at<cv::Vec3b>(0, 1) == cv::Vec3b(227, 127, 127));  // round(200 * 128/255 + 255 * 127/255)
  }
}

TEST_CASE("palette PNGs decode to their palette colours", "[decode]") {
  const auto png =
      palette_png(3, 2, {cv::Vec3b(255, 0, 0), cv::Vec3b(0, 128, 0), cv::Vec3b(1, 2, 3)}, {0, 1, 2, 2, 1, 0});
  const auto image = decode_image(png, "palette.png", rgb());
  REQUIRE(image.size() == cv::Size(3, 2));
  CHECK(image.at<cv::Vec3b>(0, 0) == cv::Vec3b(255, 0, 0));
  CHECK(image.at<cv::Vec3b>(0, 1) == cv::Vec3b(0, 128, 0));
  CHECK(image.at<cv::Vec3b>(1, 0) == cv::Vec3b(1, 2, 3));
}

TEST_CASE("JPEG EXIF orientation is applied", "[decode]") {
  // 32 wide, 16 high: top half white, bottom half black. Orientation 6 means "rotate 90 degrees clockwise to
  // display": the result is 16 wide, 32 high, with the white half on the right.
  cv::Mat image(16, 32, CV_8UC1, cv::Scalar(0));
  image.rowRange(0, 8).setTo(255);
  const auto plain = encode(image, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 95});
  CHECK(decode_image(plain, "plain.jpg", gray()).size() == cv::Size(32, 16));
  const auto rotated = decode_image(with_exif_orientation(plain, 6), "rotated.jpg", gray());
  REQUIRE(rotated.size() == cv::Size(16, 32));
  CHECK(rotated.at<uint8_t>(16, 14) > 200);  // right: white
  CHECK(rotated.at<uint8_t>(16, 1) < 50);    // left: black
}

TEST_CASE("images above the pixel limit are rejected from their header", "[decode]") {
  // A header claiming 100000 x 100000 pixels with no image data: decoding it would need 10 GB; the guard
  // rejects it without trying.
  auto bomb = palette_png(2, 2, {cv::Vec3b(0, 0, 0)}, {0, 0, 0, 0});
  for (int i : {16, 20}) {  // width and height in IHDR
    bomb[static_cast<size_t>(i)] = 0x00;
    bomb[static_cast<size_t>(i) + 1] = 0x01;
    bomb[static_cast<size_t>(i) + 2] = 0x86;
    bomb[static_cast<size_t>(i) + 3] = 0xa0;
  }
  CHECK_THROWS_WITH(decode_image(bomb, "bomb.png", rgb()),
                    Contains("'bomb.png': PNG of 100000x100000 pixels exceeds the limit of 100000000 pixels"));
  const cv::Mat small(10, 10, CV_8UC1, cv::Scalar(0));
  CHECK_THROWS_WITH(decode_image(encode(small, ".jpg"), "small.jpg", {1, 99}),
                    Contains("JPEG of 10x10 pixels exceeds the limit of 99 pixels"));
  CHECK_NOTHROW(decode_image(encode(small, ".jpg"), "small.jpg", {1, 100}));
}

TEST_CASE("bytes that are not a usable image are an error naming the file", "[decode]") {
  CHECK_THROWS_WITH(decode_image({}, "empty.jpg", rgb()), Contains("'empty.jpg': empty file"));
  CHECK_THROWS_WITH(decode_image({'h', 'e', 'l', 'l', 'o'}, "notes.txt", rgb()),
                    Contains("'notes.txt': not an image in a supported format (JPEG, PNG, BMP, TIFF, WebP)"));
  auto truncated = encode(cv::Mat(64, 64, CV_8UC3, cv::Scalar(1, 2, 3)), ".png");
  truncated.resize(60);  // header intact, data cut
  CHECK_THROWS_WITH(decode_image(truncated, "cut.png", rgb()), Contains("'cut.png': corrupt PNG data"));
  CHECK_THROWS_WITH(decode_image({1, 2, 3}, "x.png", {2, 100}), Contains("channels must be 1 or 3, got 2"));
}

TEST_CASE("reading files: missing and unreadable files are named", "[decode]") {
  vit::test::TempDir dir;
  CHECK_THROWS_WITH(read_image(dir / "missing.png", rgb()), Contains("missing.png': no such file"));
  CHECK_THROWS_WITH(read_image(dir.path(), rgb()), Contains("': not a regular file"));
  vit::test::write_bytes(dir / "zero.png", "");
  CHECK_THROWS_WITH(read_image(dir / "zero.png", rgb()), Contains("zero.png': empty file"));
  const auto good = encode(cv::Mat(3, 5, CV_8UC1, cv::Scalar(9)), ".png");
  vit::test::write_bytes(dir / "good.png", std::string(good.begin(), good.end()));
  CHECK(read_image(dir / "good.png", gray()).at<uint8_t>(2, 4) == 9);
}

}  // namespace vit::data
