#include "runtime/memory_budget.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "graph/error.h"

namespace locus {
namespace {

// The first line of a cgroup file as a byte count; 0 for "max", a missing file or garbage.
int64_t read_cgroup_limit(const char* path) {
  std::ifstream f(path);
  std::string s;
  if (!f || !std::getline(f, s) || s.empty() || s == "max") return 0;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) return 0;  // "unlimited" in cgroup v1
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

std::string human_bytes(int64_t b) {
  char buf[48];
  const double d = double(b);
  if (b >= (int64_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", d / double(int64_t(1) << 30));
  else if (b >= (1 << 20)) std::snprintf(buf, sizeof buf, "%.0f MiB", d / double(1 << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.0f KiB", d / 1024.0);
  else std::snprintf(buf, sizeof buf, "%lld bytes", (long long)b);
  return buf;
}

int64_t add_bytes(int64_t a, int64_t b) {
  if (a > std::numeric_limits<int64_t>::max() - b) return std::numeric_limits<int64_t>::max();
  return a + b;
}

int64_t mul_bytes(int64_t a, int64_t b) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return std::numeric_limits<int64_t>::max();
  return a * b;
}

int64_t usable_memory_bytes() {
  int64_t phys = 0;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) phys = mul_bytes(pages, page);
  int64_t cg = read_cgroup_limit("/sys/fs/cgroup/memory.max");
  if (cg == 0) cg = read_cgroup_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (cg > 0 && (phys == 0 || cg < phys)) return cg;
  return phys;
}

MemoryBudget MemoryBudget::resolve(int64_t requested_bytes) {
  LOCUS_CHECK(requested_bytes >= 0, "the memory budget must not be negative (got ", requested_bytes, ")");
  if (requested_bytes > 0) return {requested_bytes, "--max-memory"};
  const int64_t usable = usable_memory_bytes();
  if (usable <= 0) return {kFallbackBudgetBytes, "the OS reports no memory size; default"};
  return {int64_t(double(usable) * kDefaultBudgetFraction),
          cat("default: ", int(kDefaultBudgetFraction * 100), "% of ", human_bytes(usable), " of usable memory")};
}

void MemoryBudget::check(const std::string& what, int64_t bytes, const std::string& detail) const {
  if (bytes <= limit_bytes) return;
  const std::string need = bytes == std::numeric_limits<int64_t>::max() ? "more than 8 EiB" : human_bytes(bytes);
  fail(what, " needs ", need, detail.empty() ? "" : " (" + detail + ")", ", more than the memory budget of ", human_bytes(limit_bytes), " (", source,
       "; change it with --max-memory SIZE or SessionOptions::max_memory_bytes)");
}

}  // namespace locus
