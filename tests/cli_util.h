// Running the `locus` program from a test: exit status, stdout and stderr of one command.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tests/test_support.h"

namespace locus::test {

struct CliResult {
  int status = -1;  // exit code; -1 if killed by a signal or timed out
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// `locus ARGS` from the build tree, with `env` ("NAME=value ...") set for this run only, killed
// after timeout_s seconds.
inline CliResult run_locus(const std::string& args, const std::string& env = "", int timeout_s = 300) {
  const std::string dir = temp_dir();
  const std::string out = dir + "/locus_stdout.txt", err = dir + "/locus_stderr.txt";
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + "timeout " + std::to_string(timeout_s) + " " +
                          std::string(LOCUS_BINARY_DIR) + "/locus " + args + " >" + out + " 2>" + err;
  const int rc = std::system(cmd.c_str());
  CliResult r;
  if (WIFEXITED(rc)) r.status = WEXITSTATUS(rc);
  if (r.status == 124) r.status = -1;  // timeout(1)
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// The number printed right after `label` in `text` (e.g. number_after(out, "total MACs ")), -1 if
// `label` is not there.
inline double number_after(const std::string& text, const std::string& label) {
  const auto p = text.find(label);
  return p == std::string::npos ? -1 : std::stod(text.substr(p + label.size()));
}

// `locus ARGS` fails (non-zero exit) with exactly one line on stderr, and that line contains `needle`.
inline void expect_one_line_error(const std::string& args, const std::string& needle) {
  const CliResult e = run_locus(args);
  EXPECT_NE(e.status, 0) << args;
  EXPECT_EQ(std::count(e.err.begin(), e.err.end(), '\n'), 1) << args << ": " << e.err;
  EXPECT_NE(e.err.find(needle), std::string::npos) << args << ": " << e.err;
}

}  // namespace locus::test
