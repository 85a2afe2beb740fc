#include "cli/args.h"

#include <cerrno>
#include <cstdlib>

#include "cli/commands.h"

namespace locus::cli {

Args::Args(int argc, char** argv, int first, const std::set<std::string>& value_opts,
           const std::set<std::string>& flag_opts) {
  bool only_positional = false;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (only_positional || a.size() < 2 || a[0] != '-' || a == "-") {
      positional_.push_back(a);
      continue;
    }
    if (a == "--") { only_positional = true; continue; }
    std::string name = a, value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    if (flag_opts.count(name)) {
      if (has_value) throw UsageError("option " + name + " takes no value");
      flags_.insert(name);
    } else if (value_opts.count(name)) {
      if (!has_value) {
        if (i + 1 >= argc) throw UsageError("option " + name + " needs a value");
        value = argv[++i];
      }
      values_[name].push_back(value);
    } else {
      throw UsageError("unknown option '" + a + "'");
    }
  }
}

std::string Args::get(const std::string& name, const std::string& def) const {
  auto it = values_.find(name);
  return it == values_.end() ? def : it->second.back();
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

int64_t Args::get_int(const std::string& name, int64_t def, int64_t lo, int64_t hi) const {
  if (!has(name)) return def;
  std::string v = get(name);
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno)
    throw UsageError("option " + name + " expects an integer, got '" + v + "'");
  if (x < lo || x > hi)
    throw UsageError("option " + name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                     ", got " + v);
  return x;
}

double Args::get_double(const std::string& name, double def) const {
  if (!has(name)) return def;
  std::string v = get(name);
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || !(x >= 0)) throw UsageError("option " + name + " expects a non-negative number, got '" + v + "'");
  return x;
}

}  // namespace locus::cli
