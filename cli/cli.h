// The `locus` command-line program: run, info, check, bench, energy, decompose.
#pragma once

#include <string>

namespace locus::cli {
// The libgomp spin count the program runs with unless the environment sets OMP_WAIT_POLICY or
// GOMP_SPINCOUNT (cli.cpp, apply_wait_policy; docs/threads.md has the measurements behind it).
inline constexpr const char* kLocusSpinCount = "1000";
// The OpenMP wait policy in effect, one line: "GOMP_SPINCOUNT=1000 (locus default)", or what the
// environment set.
std::string wait_policy_summary();
// The program: every error becomes one line on stderr and a non-zero exit status.
int main(int argc, char** argv);
// The subcommand argv[1] with its arguments; throws UsageError for an unknown one, and whatever the
// command throws (main turns it into the exit status; the CLI fuzzer calls this directly).
int run_command(int argc, char** argv);
}
