#include "runtime/machine_info.h"

#include <unistd.h>

#include <cctype>
#include <cmath>

#include <filesystem>
#include <fstream>
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
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    return -1;
  }
  if (pos == 0 || !(v >= 0) || !std::isdigit(static_cast<unsigned char>(s[0]))) return -1;
  std::string suf = s.substr(pos);
  for (auto& ch : suf) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  if (suf.size() >= 2 && suf.compare(suf.size() - 2, 2, "IB") == 0) suf.resize(suf.size() - 2);
  else if (suf.size() >= 2 && suf.back() == 'B') suf.pop_back();
  double mul = 1;
  if (suf == "K") mul = 1024.0;
  else if (suf == "M") mul = 1024.0 * 1024;
  else if (suf == "G") mul = 1024.0 * 1024 * 1024;
  else if (!suf.empty() && suf != "B") return -1;
  const double b = v * mul;
  if (b > 9e18) return -1;
  return int64_t(b);
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
