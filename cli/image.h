// Image decoding (JPEG with libjpeg-turbo, PNG with libpng) and the standard ImageNet
// preprocessing, matching torchvision on PIL images bit for bit:
//   Resize(256)      short side to 256, long side int(256 * long / short) (see LongSide), PIL
//                    bilinear: antialiased (the filter widens with the downscale factor), a
//                    horizontal then a vertical pass, each rounded to 8 bits as PIL does
//   CenterCrop(224)  top = int(round((h - 224) / 2.0)) (round half to even), left likewise
//   ToTensor()       /255, HWC -> CHW
//   Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
// JPEGs are decoded as PIL decodes them (libjpeg, default settings: islow DCT, fancy upsampling),
// so the tensor for a JPEG photo equals PIL's (see image_test for the measured difference).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "graph/ir.h"

namespace locus::cli {

// An 8-bit RGB image, rows top to bottom, pixels interleaved (R, G, B).
struct Image {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3

  uint8_t at(int64_t y, int64_t x, int c) const { return rgb[size_t((y * width + x) * 3 + c)]; }
};

// Largest accepted width or height, and largest accepted width * height (64 Mi pixels, 192 MiB of
// RGB). Both are checked from the file's header, before any pixel is decoded.
inline constexpr int64_t kMaxImageSide = 16384;
inline constexpr int64_t kMaxImagePixels = int64_t(64) << 20;

// Decodes a JPEG or PNG file into 8-bit RGB, converting as PIL's Image.open(...).convert("RGB"):
//   JPEG  grey replicated; 4-component (CMYK, or YCCK which libjpeg turns into CMYK) taken as
//         Adobe's inverted CMYK, as PIL does for every 4-component JPEG, then PIL's CMYK -> RGB:
//         r = (255 - k) - round(c * (255 - k) / 255) (likewise g from m, b from y). No EXIF
//         rotation, no colour management (ICC profiles are ignored, as PIL does).
//   PNG   palette looked up; grey of 1, 2 or 4 bits scaled to 0..255; 16 bits per sample cut to
//         the high byte (as PIL for RGB, RGBA and grey+alpha; PIL's 16-bit grey "I;16" would clip
//         at 255 instead); alpha and tRNS transparency dropped, not composited; gAMA, cHRM, sRGB and
//         iCCP ignored (no gamma correction), as PIL. Interlaced files are accepted.
// Other formats (BMP, GIF, WebP, TIFF, PNM, ...) are refused with an error naming them.
// Throws a one-line Error for a missing or unreadable file, an empty file, an unsupported format,
// a size over the limits above, a truncated file (a JPEG without its end-of-image marker, a PNG
// without its IEND chunk), and corrupt data: every libjpeg warning about the data (bad Huffman
// code, premature end of a segment, extraneous bytes) is an error, as are more than 500 scans.
// Nothing is printed: library warnings are either errors or dropped.
Image decode_image(const std::string& path);
// Same from bytes in memory; `what` names the source in error messages.
Image decode_image_from_memory(const void* data, size_t size, const std::string& what = "image");

// PIL's Image.resize(size, Image.BILINEAR) of an 8-bit image (see above). Sizes must be >= 1.
Image resize_bilinear(const Image& in, int64_t width, int64_t height);

// How the long side of the resized image is computed from resize_short * long / short.
enum class LongSide {
  Truncate,  // int(...), as torchvision's transforms.Resize(int)
  Round,     // Python round(...) (half to even), as the generator of the shared reference tensors
};

// Resize(resize_short) + CenterCrop(crop) + ToTensor + Normalize(ImageNet): float32 [1, 3, crop,
// crop]. Requires 1 <= crop <= resize_short.
Tensor preprocess_imagenet(const Image& image, int64_t resize_short = 256, int64_t crop = 224,
                           LongSide long_side = LongSide::Truncate);
// The (width, height) preprocess_imagenet resizes `image` to before cropping.
std::pair<int64_t, int64_t> resized_size(const Image& image, int64_t resize_short,
                                         LongSide long_side = LongSide::Truncate);

}  // namespace locus::cli
