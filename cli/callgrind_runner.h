// `locus bench --cachegrind`: the simulated D1 and LL misses of exactly one inference, counted by
// valgrind's callgrind tool with its cache simulator (see callgrind_runner.cpp for why callgrind).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace locus::cli {

// Runs this program as `locus bench MODEL --backend B --batch N --threads 1 --single-inference
// EXTRA...` under valgrind (an argv, no shell) and returns instructions, data_reads, data_writes,
// d1_read_misses, d1_write_misses, ll_read_misses, ll_write_misses and ll_misses. `note` receives
// the cache geometry used. Throws Error with valgrind's last line when the run fails.
std::map<std::string, double> run_under_callgrind(const std::string& model, const std::string& backend, int64_t batch,
                                                  int ll_level, const std::vector<std::string>& extra_args,
                                                  std::string* note);

}  // namespace locus::cli
