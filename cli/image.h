// Image decoding (stb_image) and the standard ImageNet preprocessing, matching torchvision on PIL
// images bit for bit up to the JPEG decoder:
//   Resize(256)      short side to 256, long side int(256 * long / short) (see LongSide), PIL
//                    bilinear: antialiased (the filter widens with the downscale factor), a
//                    horizontal then a vertical pass, each rounded to 8 bits as PIL does
//   CenterCrop(224)  top = int(round((h - 224) / 2.0)) (round half to even), left likewise
//   ToTensor()       /255, HWC -> CHW
//   Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
// JPEG decoders differ slightly (PIL uses libjpeg, we use stb_image): expect pixel values within a
// few levels of PIL's.
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

// Largest accepted width or height.
inline constexpr int64_t kMaxImageSide = 16384;

// Decodes a JPEG, PNG, BMP, GIF (first frame), PSD, TGA, HDR, PIC or PNM file into RGB (grey and
// alpha are converted as PIL's convert("RGB") does: grey replicated, alpha dropped). Throws a
// one-line Error for a missing or unreadable file, data that is not a decodable image, a truncated
// JPEG, or a side larger than kMaxImageSide.
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
