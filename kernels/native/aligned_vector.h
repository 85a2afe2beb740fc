// A std::vector whose storage starts on a 64-byte cache line: for packed weights, the activation
// arena and workspaces, whose layouts the kernels assume line-aligned (one 16-float panel row or one
// zmm of 16 channels per line). malloc aligns to 16 bytes only (a large block from mmap starts 16
// bytes into its page), which split every 64-byte load and store across two lines.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

#include <sys/mman.h>

namespace locus::kernels {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kHugePage = 2u << 20;

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kHugePage) {
      void* p = ::operator new(bytes, std::align_val_t(kHugePage));
      madvise(p, (bytes + kHugePage - 1) / kHugePage * kHugePage, MADV_HUGEPAGE);
      return static_cast<T*>(p);
    }
    return static_cast<T*>(::operator new(bytes, std::align_val_t(kCacheLine)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    ::operator delete(p, std::align_val_t(n * sizeof(T) >= kHugePage ? kHugePage : kCacheLine));
  }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace locus::kernels
