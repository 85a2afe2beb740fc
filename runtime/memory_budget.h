// The memory budget of a session: before a backend allocates anything, the session adds up what it
// plans to hold (activation arena, packed weights, scratch) and refuses with one line naming the
// figure and the budget when it exceeds the limit. A 78-byte model may describe a 16 GB tensor; that
// must be an error message, not an allocation.
//
// The limit: SessionOptions::max_memory_bytes (CLI --max-memory SIZE) if > 0, else
// kDefaultBudgetFraction of the memory this process may use (physical memory, or the cgroup limit
// when that is lower), else kFallbackBudgetBytes when the OS says neither.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace locus {

inline constexpr double kDefaultBudgetFraction = 0.75;
inline constexpr int64_t kFallbackBudgetBytes = int64_t(4) << 30;  // 4 GiB

// Physical memory (sysconf) or the cgroup v2/v1 memory limit, whichever is lower; 0 if unknown.
int64_t usable_memory_bytes();

struct MemoryBudget {
  int64_t limit_bytes = std::numeric_limits<int64_t>::max();  // the default: no limit until resolved
  std::string source = "unlimited";  // "--max-memory", "default: 75% of 23.5 GiB of usable memory", ...

  // The budget for a requested limit: > 0 is used as is; 0 means the default.
  static MemoryBudget resolve(int64_t requested_bytes);
  // Throws Error when bytes > limit_bytes: "<what> needs <bytes> (<detail>), more than the memory
  // budget of <limit> (<source>; change it with --max-memory SIZE or SessionOptions::max_memory_bytes)".
  void check(const std::string& what, int64_t bytes, const std::string& detail = "") const;
};

// "16.0 GiB", "300 MiB", "12 KiB", "100 bytes"
std::string human_bytes(int64_t bytes);

// a + b for byte counts, saturating at INT64_MAX instead of overflowing.
int64_t add_bytes(int64_t a, int64_t b);
// a * b for byte counts (both >= 0), saturating.
int64_t mul_bytes(int64_t a, int64_t b);

}  // namespace locus
