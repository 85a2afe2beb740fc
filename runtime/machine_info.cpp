#include "runtime/machine_info.h"

#include <sched.h>
#include <unistd.h>

#include <cctype>
#include <cmath>

#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace locus {

static std::string read_line(const fs::path& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  return s;
}

static int64_t parse_size(const std::string& s) {  // "32K", "512K", "32768K", "1M"
  if (s.empty()) return 0;
  int64_t v = std::atoll(s.c_str());
  char u = s.back();
  if (u == 'K') v <<= 10;
  if (u == 'M') v <<= 20;
  if (u == 'G') v <<= 30;
  return v;
}

MachineInfo read_machine_info() {
  MachineInfo m;
  m.logical_cpus = int(sysconf(_SC_NPROCESSORS_ONLN));
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  while (std::getline(cpuinfo, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string val = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && m.cpu_model.empty()) m.cpu_model = val;
    if (key == "flags" && flags.empty()) {
      std::istringstream is(val);
      for (std::string f; is >> f;) flags.insert(f);
    }
  }
  if (m.cpu_model.empty()) m.cpu_model = "unknown";
  for (const char* f : {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"})
    if (flags.count(f)) m.isa.push_back(f);
  m.hypervisor = flags.count("hypervisor") != 0;
  std::error_code ec;
  fs::path base = "/sys/devices/system/cpu/cpu0/cache";
  for (int i = 0; i < 8; ++i) {
    fs::path d = base / ("index" + std::to_string(i));
    if (!fs::exists(d, ec)) break;
    CacheLevel c;
    c.level = std::atoi(read_line(d / "level").c_str());
    c.type = read_line(d / "type");
    c.size_bytes = parse_size(read_line(d / "size"));
    c.ways = std::atoi(read_line(d / "ways_of_associativity").c_str());
    c.line_bytes = std::atoi(read_line(d / "coherency_line_size").c_str());
    std::string shared = read_line(d / "shared_cpu_list");  // "0" or "0-1" or "0,2"
    int n = 0;
    std::istringstream is(shared);
    for (std::string part; std::getline(is, part, ',');) {
      auto dash = part.find('-');
      n += dash == std::string::npos ? 1 : std::atoi(part.substr(dash + 1).c_str()) - std::atoi(part.c_str()) + 1;
    }
    c.shared_by_cpus = n;
    m.caches.push_back(c);
  }
  return m;
}

int64_t MachineInfo::cache_bytes(int level) const {
  for (auto& c : caches)
    if (c.level == level && c.type != "Instruction") return c.size_bytes;
  return 0;
}

std::string format_bytes(int64_t b) {
  char buf[32];
  if (b >= (1 << 20) && b % (1 << 20) == 0) std::snprintf(buf, sizeof buf, "%lldM", (long long)(b >> 20));
  else if (b >= (1 << 20)) std::snprintf(buf, sizeof buf, "%.1fM", double(b) / (1 << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%lldK", (long long)(b >> 10));
  else std::snprintf(buf, sizeof buf, "%lldB", (long long)b);
  return buf;
}

int64_t parse_bytes(const std::string& s) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  auto digit = [&](size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '9'; };
  size_t i = 0;
  if (!digit(0)) return -1;
  int64_t whole = 0;
  for (; digit(i); ++i) {
    const int d = s[i] - '0';
    if (whole > (kMax - d) / 10) return -1;
    whole = whole * 10 + d;
  }
  int64_t frac = 0, frac_div = 1;  // fraction = frac / frac_div
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digit(i)) return -1;
    for (int n = 0; digit(i); ++i, ++n) {
      if (n == 9) return -1;
      frac = frac * 10 + (s[i] - '0');
      frac_div *= 10;
    }
  }
  std::string suf = s.substr(i);
  for (auto& ch : suf) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  int64_t mul = 1;
  if (!suf.empty() && (suf[0] == 'K' || suf[0] == 'M' || suf[0] == 'G')) {
    mul = suf[0] == 'K' ? int64_t(1) << 10 : suf[0] == 'M' ? int64_t(1) << 20 : int64_t(1) << 30;
    suf.erase(0, 1);
    if (suf == "IB") suf.clear();
  }
  if (!suf.empty() && suf != "B") return -1;
  if (whole > kMax / mul) return -1;
  const int64_t frac_bytes = frac * mul / frac_div;  // < mul; frac < 1e9 and mul <= 2^30: no overflow
  if (whole * mul > kMax - frac_bytes) return -1;
  return whole * mul + frac_bytes;
}

int64_t current_core_cache_bytes(int level) {
  const int cpu = sched_getcpu();
  for (int c : {cpu, 0}) {
    if (c < 0) continue;
    std::error_code ec;
    const fs::path base = fs::path("/sys/devices/system/cpu") / ("cpu" + std::to_string(c)) / "cache";
    if (!fs::exists(base, ec)) continue;
    for (int i = 0; i < 16; ++i) {
      const fs::path d = base / ("index" + std::to_string(i));
      if (!fs::exists(d, ec)) break;
      if (std::atoi(read_line(d / "level").c_str()) != level || read_line(d / "type") == "Instruction") continue;
      return parse_size(read_line(d / "size"));
    }
    return 0;  // this cpu lists its caches, none at `level`
  }
  return 0;
}

std::string MachineInfo::summary() const {
  std::string s = cpu_model + ", " + std::to_string(logical_cpus) + " CPUs";
  for (auto& c : caches) {
    if (c.type == "Instruction") continue;
    s += ", L" + std::to_string(c.level) + (c.level == 1 ? "d " : " ") + format_bytes(c.size_bytes);
  }
  if (!isa.empty()) {
    s += ",";
    for (auto& f : isa) s += " " + f;
  }
  if (hypervisor) s += ", virtual machine";
  return s;
}

}  // namespace locus
