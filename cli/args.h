// A small command-line parser: `--name value`, `--name=value`, boolean `--flag`, repeated options,
// positional arguments. Unknown options are an error that names them.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace locus::cli {

class Args {
 public:
  // value_opts take a value; flag_opts do not. Throws UsageError on anything else.
  Args(int argc, char** argv, int first, const std::set<std::string>& value_opts,
       const std::set<std::string>& flag_opts);

  bool flag(const std::string& name) const { return flags_.count(name) != 0; }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string get(const std::string& name, const std::string& def = "") const;
  std::vector<std::string> all(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t def, int64_t lo, int64_t hi) const;
  double get_double(const std::string& name, double def) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

}  // namespace locus::cli
