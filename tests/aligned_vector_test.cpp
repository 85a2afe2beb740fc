// AlignedVector (kernels/native/aligned_vector.h): storage starts on a 64-byte line, blocks of 2 MiB
// or more on a 2 MiB boundary (huge-page eligible); packed weights and the native backend's arena use it.
#include <gtest/gtest.h>

#include <cstdint>

#include "kernels/native/aligned_vector.h"
#include "kernels/native/gemm.h"

namespace locus::kernels {
namespace {

uintptr_t address(const void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(AlignedVector, SmallAndLargeBlocksStartOnALine) {
  // Sizes around malloc's mmap threshold (128 KiB), where plain new returns 16 bytes into a page.
  for (size_t n : {size_t(1), size_t(17), size_t(1000), size_t(40000), size_t(300000)}) {
    AlignedVector<float> v(n, 1.f);
    EXPECT_EQ(address(v.data()) % kCacheLine, 0u) << n << " floats";
    v.resize(n * 3 + 5, 2.f);  // reallocation keeps the alignment and the values
    EXPECT_EQ(address(v.data()) % kCacheLine, 0u) << n * 3 + 5 << " floats";
    EXPECT_EQ(v[n - 1], 1.f);
    EXPECT_EQ(v[n], 2.f);
  }
}

TEST(AlignedVector, BlocksOfAHugePageOrMoreStartOnAHugePage) {
  AlignedVector<float> v(kHugePage / sizeof(float) + 3);
  EXPECT_EQ(address(v.data()) % kHugePage, 0u);
}

TEST(AlignedVector, PackedWeightsStartOnALine) {
  const int64_t K = 37, N = 100;
  std::vector<float> b(size_t(K * N), 0.5f);
  for (int i = 0; i < 4; ++i) {
    const PackedB p = pack_b(K, N, b.data(), N, false);
    EXPECT_EQ(address(p.data.data()) % kCacheLine, 0u);
  }
}

}  // namespace
}  // namespace locus::kernels
