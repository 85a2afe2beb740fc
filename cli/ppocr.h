// `locus run --ppocr det|cls`: the PP-OCR models on photos. The detector's input is the photo scaled
// so that its long side is at most 960 and both sides are multiples of 32 (ImageNet mean / std); its
// output, the text probability map, is written as an 8-bit grey PNG. The classifier's input is the
// photo scaled to height 48 (width at most 192, the rest zero), (x / 255 - 0.5) / 0.5; it says
// whether the text is upright (class 0) or rotated 180 degrees (class 1).
#pragma once

#include <string>

#include "cli/image.h"
#include "graph/ir.h"

namespace locus::cli {

// float32 [1, 3, H, W] inputs, as described above.
Tensor ppocr_det_input(const Image& image, int64_t limit_side = 960);
Tensor ppocr_cls_input(const Image& image);
// Writes a [H, W] map of values in [0, 1] (row-major) as an 8-bit grey PNG (round(v * 255), clamped).
void write_grey_png(const std::string& path, const float* values, int64_t height, int64_t width);

}  // namespace locus::cli
