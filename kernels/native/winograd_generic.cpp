// Winograd F(4x4, 3x3) and F(2x2, 3x3) tile transforms for generic (4 channels per vector; compiled with the ISA's
// flags by CMakeLists.txt, chosen at run time by winograd.cpp). The arithmetic is winograd_transforms.h.
#include "kernels/native/winograd_transforms.h"

namespace locus::kernels {

namespace {
typedef float Vec __attribute__((vector_size(4 * sizeof(float))));
}  // namespace

void winograd_input_tile_generic(const WinogradInputTile& t) { winograd_detail::input_tile_all<Vec>(t); }
void winograd_output_tile_generic(const WinogradOutputTile& t) { winograd_detail::output_tile_all<Vec>(t); }

}  // namespace locus::kernels
