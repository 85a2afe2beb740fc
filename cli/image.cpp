// Image decoding with libjpeg(-turbo) and libpng, and torchvision/PIL-compatible ImageNet
// preprocessing (see image.h).
//
// Both libraries report errors through callbacks that must not return. Their error callbacks here
// format the message into a char buffer and longjmp back to a setjmp in a decode step whose frame
// holds only trivially destructible state (pointers, ints, C structs): no C++ destructor is ever
// skipped. The C++ wrappers around those steps own the buffers and the library state (released by
// guards) and throw locus::Error with the captured message once the step has returned.
#include "cli/image.h"

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
#include <jerror.h>
// clang-format on
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <type_traits>

namespace locus::cli {

namespace {

constexpr int64_t kMaxFileBytes = int64_t(1) << 30;  // 1 GiB
std::vector<unsigned char> read_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOCUS_CHECK(fs::exists(path, ec), "cannot open image '", path, "': no such file");
  LOCUS_CHECK(!fs::is_directory(path, ec), "'", path, "' is a directory, not an image");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  LOCUS_CHECK(f, "cannot open image '", path, "': permission denied or unreadable");
  const std::streamoff size = f.tellg();
  LOCUS_CHECK(size >= 0, "cannot read image '", path, "'");
  LOCUS_CHECK(size <= kMaxFileBytes, "'", path, "' is ", size, " bytes, larger than the limit of ",
              kMaxFileBytes, " for an image file");
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(bytes.data()), size);
  LOCUS_CHECK(f.gcount() == size, "cannot read image '", path, "'");
  return bytes;
}

// ---- header checks ------------------------------------------------------------------------------

void check_size(int64_t w, int64_t h, const std::string& what) {
  LOCUS_CHECK(w >= 1 && h >= 1 && w <= kMaxImageSide && h <= kMaxImageSide, "'", what, "' is ", w,
              "x", h, " pixels; each side must be between 1 and ", kMaxImageSide);
  LOCUS_CHECK(w * h <= kMaxImagePixels, "'", what, "' is ", w, "x", h, " = ", w * h,
              " pixels, more than the limit of ", kMaxImagePixels);
}

bool starts_with(const unsigned char* p, size_t n, const char* magic, size_t m) {
  return n >= m && std::memcmp(p, magic, m) == 0;
}

// The name of a recognised but unsupported format, or nullptr.
const char* other_format(const unsigned char* p, size_t n) {
  if (starts_with(p, n, "BM", 2)) return "BMP";
  if (starts_with(p, n, "GIF87a", 6) || starts_with(p, n, "GIF89a", 6)) return "GIF";
  if (n >= 12 && starts_with(p, n, "RIFF", 4) && std::memcmp(p + 8, "WEBP", 4) == 0) return "WebP";
  if (starts_with(p, n, "II*\0", 4) || starts_with(p, n, "MM\0*", 4)) return "TIFF";
  if (starts_with(p, n, "8BPS", 4)) return "PSD";
  if (starts_with(p, n, "#?RADIANCE", 10) || starts_with(p, n, "#?RGBE", 6)) return "HDR";
  if (n >= 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '7') return "PNM";
  if (n >= 12 && std::memcmp(p + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
  return nullptr;
}

constexpr size_t kMessageBytes = 256;

// Copies a library message into `out`, control characters replaced, so that the error stays one
// line whatever bytes of the file a message quotes.
void copy_message(char (&out)[kMessageBytes], const char* msg) {
  std::snprintf(out, sizeof out, "%s", msg ? msg : "unknown error");
  for (char* p = out; *p; ++p)
    if (static_cast<unsigned char>(*p) < 0x20 || *p == 0x7F) *p = '?';
}

// ---- JPEG -----------------------------------------------------------------------------------------

// Warnings that say nothing about the pixels; every other warning (truncated data, corrupt entropy
// data, extraneous bytes, bad progression) is an error.
bool benign_jpeg_warning(int code) { return code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM; }

// More scans than this is an error: a progressive JPEG has about ten; thousands of tiny scans make
// a small file decode for minutes (the limit of TurboJPEG 2.x's TJFLAG_LIMITSCANS).
constexpr int kMaxJpegScans = 500;

struct JpegContext {  // trivially destructible: lives in frames that are longjmp'd across
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  bool truncated;
  char message[kMessageBytes];
};
static_assert(std::is_trivially_destructible_v<JpegContext>);

JpegContext* context_of(j_common_ptr cinfo) { return static_cast<JpegContext*>(cinfo->client_data); }

extern "C" void jpeg_error_exit_longjmp(j_common_ptr cinfo) {
  JpegContext* ctx = context_of(cinfo);
  char buffer[JMSG_LENGTH_MAX] = {0};
  (*cinfo->err->format_message)(cinfo, buffer);
  copy_message(ctx->message, buffer);
  std::longjmp(ctx->jump, 1);
}

// Trace messages (level >= 0) are dropped; warnings (level -1) are errors unless benign, in which
// case they are dropped too: nothing is printed.
extern "C" void jpeg_emit_message_strict(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0 || benign_jpeg_warning(cinfo->err->msg_code)) return;
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) context_of(cinfo)->truncated = true;
  jpeg_error_exit_longjmp(cinfo);
}

extern "C" void jpeg_limit_scans(j_common_ptr cinfo) {
  if (cinfo->is_decompressor &&
      reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxJpegScans) {
    JpegContext* ctx = context_of(cinfo);
    std::snprintf(ctx->message, sizeof ctx->message, "more than %d scans", kMaxJpegScans);
    std::longjmp(ctx->jump, 1);
  }
}

// Step 0: create the decompressor (it keeps client_data, which the error handler needs).
bool jpeg_create_step(JpegContext* ctx) {
  ctx->cinfo.client_data = ctx;
  if (setjmp(ctx->jump)) return false;
  jpeg_create_decompress(&ctx->cinfo);
  return true;
}

// Step 1: read the header and choose the output colour space. Returns false on error (message in
// ctx->message). Only trivially destructible state in this frame.
bool jpeg_read_header_step(JpegContext* ctx, const unsigned char* data, size_t size) {
  if (setjmp(ctx->jump)) return false;
  jpeg_mem_src(&ctx->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&ctx->cinfo, TRUE);
  // PIL decodes with libjpeg's defaults: islow DCT, fancy upsampling, no block smoothing change
  ctx->cinfo.dct_method = JDCT_ISLOW;
  ctx->cinfo.do_fancy_upsampling = TRUE;
  switch (ctx->cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: ctx->cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: ctx->cinfo.out_color_space = JCS_CMYK; break;
    default: ctx->cinfo.out_color_space = JCS_RGB; break;  // YCbCr, RGB; others fail below
  }
  return true;
}

// PIL's CMYK -> RGB (Convert.c cmyk2rgb): with nk = 255 - k, r = nk - round(c * nk / 255).
uint8_t cmyk_channel(int c, int k) {
  const int nk = 255 - k;
  const int t = c * nk + 128;
  return uint8_t(std::clamp(nk - (((t >> 8) + t) >> 8), 0, 255));
}

// Writes one row of converted pixels: `raw` holds `w` pixels of `comps` 8-bit samples.
void jpeg_row_to_rgb(const unsigned char* raw, JDIMENSION w, int comps, unsigned char* dst) {
  if (comps == 1) {  // grey: replicated
    for (JDIMENSION x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = raw[x];
  } else if (comps == 4) {
    // As PIL, every 4-component JPEG is taken to hold Adobe (inverted) CMYK: libjpeg returns the
    // stored values (YCCK already converted to CMYK), PIL's "CMYK;I" raw mode inverts them.
    for (JDIMENSION x = 0; x < w; ++x) {
      const unsigned char* p = raw + 4 * x;
      const int k = 255 - p[3];
      for (int c = 0; c < 3; ++c) dst[3 * x + c] = cmyk_channel(255 - p[c], k);
    }
  } else {
    std::memcpy(dst, raw, size_t(w) * 3);
  }
}

// Step 2: decode the scanlines, appending each converted to RGB to `out` (caller-owned, capacity
// reserved: the image is not zero-filled up front, so a header claiming a large image over a few
// bytes of data costs no more than the rows actually decoded); `row` is a caller-owned scratch
// row of width * 4 bytes.
bool jpeg_decode_step(JpegContext* ctx, std::vector<uint8_t>* out, unsigned char* row) {
  if (setjmp(ctx->jump)) return false;
  jpeg_decompress_struct& cinfo = ctx->cinfo;
  jpeg_start_decompress(&cinfo);
  const JDIMENSION w = cinfo.output_width;
  const int comps = cinfo.output_components;
  // no scaling is requested, so the output is the header's size; checked before writing anything
  if (w != cinfo.image_width || cinfo.output_height != cinfo.image_height ||
      (comps != 1 && comps != 3 && comps != 4)) {
    std::snprintf(ctx->message, sizeof ctx->message, "unexpected output layout (%u x %u x %d)",
                  unsigned(w), unsigned(cinfo.output_height), comps);
    return false;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[1] = {row};
    if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
      std::snprintf(ctx->message, sizeof ctx->message, "no progress reading scanlines");
      return false;
    }
    const size_t at = out->size();
    out->resize(at + size_t(w) * 3);
    jpeg_row_to_rgb(row, w, comps, out->data() + at);
  }
  jpeg_finish_decompress(&cinfo);  // reads up to the end-of-image marker: a cut file fails here
  return true;
}

Image decode_jpeg(const unsigned char* data, size_t size, const std::string& what) {
  auto ctx = std::make_unique<JpegContext>();
  std::memset(ctx.get(), 0, sizeof(JpegContext));
  ctx->cinfo.err = jpeg_std_error(&ctx->err);
  ctx->err.error_exit = jpeg_error_exit_longjmp;
  ctx->err.emit_message = jpeg_emit_message_strict;
  ctx->progress.progress_monitor = jpeg_limit_scans;
  if (!jpeg_create_step(ctx.get())) {  // fails only when out of memory
    jpeg_destroy_decompress(&ctx->cinfo);  // frees what was allocated, if anything
    locus::fail("'", what, "' could not be decoded (libjpeg: ", ctx->message, ")");
  }
  struct Destroy {
    JpegContext* c;
    ~Destroy() { jpeg_destroy_decompress(&c->cinfo); }
  } destroy{ctx.get()};
  ctx->cinfo.progress = &ctx->progress;
  // libjpeg's whole-image buffers (progressive and multi-scan files) may not exceed this
  ctx->cinfo.mem->max_memory_to_use = long(1) << 30;

  auto fail = [&]() {
    if (ctx->truncated) locus::fail("'", what, "' is a truncated JPEG (libjpeg: ", ctx->message, ")");
    locus::fail("'", what, "' is not a valid JPEG (libjpeg: ", ctx->message, ")");
  };
  if (!jpeg_read_header_step(ctx.get(), data, size)) fail();
  check_size(ctx->cinfo.image_width, ctx->cinfo.image_height, what);
  Image img;
  img.width = ctx->cinfo.image_width;
  img.height = ctx->cinfo.image_height;
  img.rgb.reserve(size_t(img.width * img.height * 3));
  std::vector<unsigned char> row(size_t(img.width * 4));
  if (!jpeg_decode_step(ctx.get(), &img.rgb, row.data())) fail();
  LOCUS_CHECK(img.rgb.size() == size_t(img.width * img.height * 3), "'", what,
              "': libjpeg returned ", img.rgb.size(), " bytes for ", img.width, "x", img.height);
  return img;
}

// ---- PNG ------------------------------------------------------------------------------------------

struct PngContext {  // trivially destructible
  const unsigned char* data;
  size_t size, pos;
  bool truncated;
  char message[kMessageBytes];
};
static_assert(std::is_trivially_destructible_v<PngContext>);

extern "C" void png_error_longjmp(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  copy_message(ctx->message, msg);
  png_longjmp(png, 1);
}

extern "C" void png_warning_drop(png_structp, png_const_charp) {}

extern "C" void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  if (n > ctx->size - ctx->pos) {
    ctx->truncated = true;
    png_error(png, "unexpected end of data");
  }
  std::memcpy(out, ctx->data + ctx->pos, n);
  ctx->pos += n;
}

struct PngHeader {
  png_uint_32 width, height;
  int channels;  // after the transforms: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA; 8 bits each
};

// Step 1: signature and chunks up to the image data: the size, checked by the caller before step 2
// (libpng allocates row buffers from it). Only trivially destructible state in this frame.
bool png_read_header_step(png_structp png, png_infop info, PngHeader* h) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  h->width = png_get_image_width(png, info);
  h->height = png_get_image_height(png, info);
  return true;
}

// Step 2: the transforms to 8-bit grey/RGB with or without alpha.
bool png_set_transforms_step(png_structp png, png_infop info, PngHeader* h) {
  if (setjmp(png_jmpbuf(png))) return false;
  const int bit_depth = png_get_bit_depth(png, info), color_type = png_get_color_type(png, info);
  // As PIL: palette to RGB, low-depth grey scaled to 0..255, 16 bits to the high byte;
  // transparency (tRNS) becomes an alpha channel, dropped later. No gamma or colour management.
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (bit_depth == 16) png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  h->channels = png_get_channels(png, info);
  if (png_get_bit_depth(png, info) != 8 || h->channels < 1 || h->channels > 4 ||
      png_get_rowbytes(png, info) != size_t(h->width) * size_t(h->channels))
    png_error(png, "unexpected pixel layout after conversion");
  return true;
}

// One row of `w` 8-bit pixels of `channels` samples to RGB: grey replicated, alpha dropped (as
// PIL's convert("RGB"), not composited).
void png_row_to_rgb(const unsigned char* src, size_t w, int channels, unsigned char* dst) {
  for (size_t x = 0; x < w; ++x) {
    const unsigned char* p = src + x * size_t(channels);
    if (channels <= 2) {
      dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = p[0];
    } else {
      dst[3 * x] = p[0], dst[3 * x + 1] = p[1], dst[3 * x + 2] = p[2];
    }
  }
}

// Step 3: decode the rows, appending each converted to RGB to `out` (caller-owned, capacity
// reserved), and read to the end chunk. A non-interlaced file goes row by row through `row`
// (width * channels bytes); an interlaced one needs the whole image first: `rows` points to
// height caller-owned rows of width * channels bytes (not zero-filled: the seven Adam7 passes
// write every pixel before png_read_image returns).
bool png_decode_step(png_structp png, png_infop info, const PngHeader* h, bool interlaced,
                     unsigned char* row, png_bytepp rows, std::vector<uint8_t>* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  const size_t w = h->width;
  if (interlaced) png_read_image(png, rows);
  for (png_uint_32 y = 0; y < h->height; ++y) {
    const unsigned char* src = rows ? rows[y] : row;
    if (!interlaced) png_read_row(png, row, nullptr);
    const size_t at = out->size();
    out->resize(at + w * 3);
    png_row_to_rgb(src, w, h->channels, out->data() + at);
  }
  png_read_end(png, nullptr);  // a file cut after its image data still lacks IEND: an error
  return true;
}

Image decode_png(const unsigned char* data, size_t size, const std::string& what) {
  PngContext ctx{};
  ctx.data = data;
  ctx.size = size;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_error_longjmp,
                                           png_warning_drop);
  LOCUS_CHECK(png, "'", what, "': cannot initialise libpng");
  png_infop info = png_create_info_struct(png);
  struct Destroy {
    png_structp* p;
    png_infop* i;
    ~Destroy() { png_destroy_read_struct(p, i, nullptr); }
  } destroy{&png, &info};
  LOCUS_CHECK(info, "'", what, "': cannot initialise libpng");
  png_set_read_fn(png, &ctx, png_read_memory);
  // our own size check below names the size; libpng's default per-side limit is 1,000,000
  png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  // text, ICC and other ancillary chunks: at most 8 MB each, as libpng's default, explicitly
  png_set_chunk_malloc_max(png, 8u << 20);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  // image_fuzzer only: mutated chunks keep their old CRC and zlib checksum; checking them would
  // stop nearly every PNG mutation at the first chunk
  png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#ifdef PNG_IGNORE_ADLER32
  png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
#endif

  auto fail = [&]() {
    if (ctx.truncated) locus::fail("'", what, "' is a truncated PNG (libpng: ", ctx.message, ")");
    locus::fail("'", what, "' is not a valid PNG (libpng: ", ctx.message, ")");
  };
  PngHeader h{};
  if (!png_read_header_step(png, info, &h)) fail();
  check_size(h.width, h.height, what);
  if (!png_set_transforms_step(png, info, &h)) fail();
  Image img;
  img.width = h.width;
  img.height = h.height;
  img.rgb.reserve(size_t(img.width * img.height * 3));
  const size_t stride = size_t(img.width) * size_t(h.channels);
  const bool interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
  std::vector<unsigned char> row(interlaced ? 0 : stride);
  std::unique_ptr<unsigned char[]> full;  // default-initialised: untouched pages stay unallocated
  std::vector<png_bytep> rows;
  if (interlaced) {
    full.reset(new unsigned char[stride * size_t(img.height)]);
    rows.resize(size_t(img.height));
    for (size_t y = 0; y < rows.size(); ++y) rows[y] = full.get() + y * stride;
  }
  if (!png_decode_step(png, info, &h, interlaced, row.data(), interlaced ? rows.data() : nullptr,
                       &img.rgb))
    fail();
  LOCUS_CHECK(img.rgb.size() == size_t(img.width * img.height * 3), "'", what, "': libpng returned ",
              img.rgb.size(), " bytes for ", img.width, "x", img.height);
  return img;
}

// Filter coefficients of one resampling pass, as PIL computes them for its BILINEAR filter (a
// triangle of radius 1, widened by the downscale factor), in 8-bit fixed point with 22 fraction
// bits.
struct PassCoefficients {
  int64_t taps = 0;                   // coefficients stored per output position
  std::vector<int64_t> first, count;  // input range [first, first + count) of each output
  std::vector<int32_t> weights;       // [out][taps]
};

constexpr int kPrecisionBits = 22;  // 32 - 8 (pixel) - 2 (headroom), as PIL

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

PassCoefficients bilinear_coefficients(int64_t in_size, int64_t out_size) {
  const double scale = double(in_size) / double(out_size);
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;
  const double inv_filter_scale = 1.0 / filter_scale;
  PassCoefficients pc;
  pc.taps = int64_t(std::ceil(support)) * 2 + 1;
  pc.first.resize(size_t(out_size));
  pc.count.resize(size_t(out_size));
  pc.weights.assign(size_t(out_size * pc.taps), 0);
  std::vector<double> w(size_t(pc.taps));
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = (double(i) + 0.5) * scale;
    // PIL rounds with a C cast (truncation toward zero) before clamping
    const int64_t lo = std::max<int64_t>(0, int64_t(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in_size, int64_t(center + support + 0.5));
    const int64_t n = hi - lo;
    double total = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      w[size_t(k)] = triangle((double(k + lo) - center + 0.5) * inv_filter_scale);
      total += w[size_t(k)];
    }
    int32_t* fixed = &pc.weights[size_t(i * pc.taps)];
    for (int64_t k = 0; k < n; ++k) {
      const double normalised = total != 0.0 ? w[size_t(k)] / total : w[size_t(k)];
      const double scaled = normalised * double(1 << kPrecisionBits);
      fixed[k] = int32_t(scaled < 0 ? scaled - 0.5 : scaled + 0.5);  // round half away from zero
    }
    pc.first[size_t(i)] = lo;
    pc.count[size_t(i)] = n;
  }
  return pc;
}

// Fixed-point accumulator to a pixel: round (the accumulator starts at one half), shift, clamp.
uint8_t to_pixel(int32_t acc) {
  if (acc <= 0) return 0;
  if (acc >= (int32_t(1) << (kPrecisionBits + 8))) return 255;
  return uint8_t(acc >> kPrecisionBits);
}

// Resamples rows [row_begin, row_end) of `in` horizontally to `out_width`.
Image horizontal_pass(const Image& in, int64_t out_width, int64_t row_begin, int64_t row_end) {
  const PassCoefficients pc = bilinear_coefficients(in.width, out_width);
  Image out;
  out.width = out_width;
  out.height = row_end - row_begin;
  out.rgb.resize(size_t(out.width * out.height * 3));
  for (int64_t y = 0; y < out.height; ++y) {
    const uint8_t* src = &in.rgb[size_t((y + row_begin) * in.width * 3)];
    uint8_t* dst = &out.rgb[size_t(y * out_width * 3)];
    for (int64_t x = 0; x < out_width; ++x) {
      const int32_t* w = &pc.weights[size_t(x * pc.taps)];
      const uint8_t* s = src + pc.first[size_t(x)] * 3;
      for (int c = 0; c < 3; ++c) {
        int32_t acc = int32_t(1) << (kPrecisionBits - 1);
        for (int64_t k = 0; k < pc.count[size_t(x)]; ++k) acc += int32_t(s[k * 3 + c]) * w[k];
        dst[x * 3 + c] = to_pixel(acc);
      }
    }
  }
  return out;
}

// Resamples `in` vertically to `out_height`; its row 0 is row `row_offset` of the full-size source.
Image vertical_pass(const Image& in, int64_t out_height, const PassCoefficients& pc,
                    int64_t row_offset) {
  Image out;
  out.width = in.width;
  out.height = out_height;
  out.rgb.resize(size_t(out.width * out.height * 3));
  const int64_t row = in.width * 3;
  for (int64_t y = 0; y < out_height; ++y) {
    const int32_t* w = &pc.weights[size_t(y * pc.taps)];
    const uint8_t* src = &in.rgb[size_t((pc.first[size_t(y)] - row_offset) * row)];
    uint8_t* dst = &out.rgb[size_t(y * row)];
    for (int64_t i = 0; i < row; ++i) {
      int32_t acc = int32_t(1) << (kPrecisionBits - 1);
      for (int64_t k = 0; k < pc.count[size_t(y)]; ++k) acc += int32_t(src[k * row + i]) * w[k];
      dst[i] = to_pixel(acc);
    }
  }
  return out;
}

// torchvision CenterCrop: int(round(excess / 2.0)), Python rounding half to even.
int64_t crop_offset(int64_t excess) {
  const int64_t q = excess / 2;
  if (excess % 2 == 0) return q;
  return q % 2 == 0 ? q : q + 1;
}

}  // namespace

Image decode_image_from_memory(const void* data, size_t size, const std::string& what) {
  LOCUS_CHECK(size > 0, "'", what, "' is empty, not an image");
  const auto* p = static_cast<const unsigned char*>(data);
  if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return decode_jpeg(p, size, what);
  if (starts_with(p, size, "\x89PNG\r\n\x1a\n", 8)) return decode_png(p, size, what);
  if (const char* format = other_format(p, size))
    locus::fail("'", what, "' is a ", format, " image; only JPEG and PNG are supported");
  locus::fail("'", what, "' is not a JPEG or PNG image (unrecognised signature)");
}

Image decode_image(const std::string& path) {
  const std::vector<unsigned char> bytes = read_file(path);
  return decode_image_from_memory(bytes.data(), bytes.size(), path);
}

Image resize_bilinear(const Image& in, int64_t width, int64_t height) {
  LOCUS_CHECK(width >= 1 && height >= 1 && width <= kMaxImageSide && height <= kMaxImageSide,
              "resize to ", width, "x", height, ": each side must be between 1 and ",
              kMaxImageSide);
  LOCUS_CHECK(in.width >= 1 && in.height >= 1 && in.rgb.size() == size_t(in.width * in.height * 3),
              "resize of an empty or inconsistent image");
  const bool horizontal = width != in.width, vertical = height != in.height;
  if (!vertical) return horizontal ? horizontal_pass(in, width, 0, in.height) : in;
  // As PIL: the horizontal pass only covers the source rows the vertical pass reads.
  const PassCoefficients pc = bilinear_coefficients(in.height, height);
  const int64_t first_row = pc.first.front();
  const int64_t end_row = pc.first.back() + pc.count.back();
  if (!horizontal) return vertical_pass(in, height, pc, 0);
  return vertical_pass(horizontal_pass(in, width, first_row, end_row), height, pc, first_row);
}

std::pair<int64_t, int64_t> resized_size(const Image& image, int64_t resize_short,
                                         LongSide long_side) {
  LOCUS_CHECK(image.width >= 1 && image.height >= 1, "preprocessing: empty image");
  LOCUS_CHECK(resize_short >= 1 && resize_short <= kMaxImageSide, "preprocessing: resize to ",
              resize_short, " is outside [1, ", kMaxImageSide, "]");
  // torchvision Resize(int): short side to resize_short, long side int(resize_short * long / short)
  const bool portrait = image.width <= image.height;
  const int64_t short_side = portrait ? image.width : image.height;
  const int64_t long_side_in = portrait ? image.height : image.width;
  const double exact = double(resize_short * long_side_in) / double(short_side);  // as Python's /
  int64_t new_long = int64_t(exact);
  if (long_side == LongSide::Round) {
    const double fraction = exact - double(new_long);
    if (fraction > 0.5 || (fraction == 0.5 && new_long % 2 != 0)) ++new_long;
  }
  return portrait ? std::pair{resize_short, new_long} : std::pair{new_long, resize_short};
}

Tensor preprocess_imagenet(const Image& image, int64_t resize_short, int64_t crop,
                           LongSide long_side) {
  LOCUS_CHECK(crop >= 1 && crop <= resize_short, "preprocessing: need 1 <= crop (", crop,
              ") <= resize (", resize_short, ")");
  const auto [width, height] = resized_size(image, resize_short, long_side);
  const Image resized = resize_bilinear(image, width, height);

  const int64_t top = crop_offset(height - crop);
  const int64_t left = crop_offset(width - crop);
  const float mean[3] = {0.485f, 0.456f, 0.406f};
  const float stddev[3] = {0.229f, 0.224f, 0.225f};
  Tensor t(DType::F32, {1, 3, crop, crop});
  float* out = t.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int64_t y = 0; y < crop; ++y)
      for (int64_t x = 0; x < crop; ++x) {
        const float v = float(resized.at(top + y, left + x, c)) / 255.0f;
        *out++ = (v - mean[c]) / stddev[c];
      }
  return t;
}

}  // namespace locus::cli
