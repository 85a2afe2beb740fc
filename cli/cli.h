// The `locus` command-line program: run, info, check, bench, energy, decompose.
#pragma once

namespace locus::cli {
// The program: every error becomes one line on stderr and a non-zero exit status.
int main(int argc, char** argv);
// The subcommand argv[1] with its arguments; throws UsageError for an unknown one, and whatever the
// command throws (main turns it into the exit status; the CLI fuzzer calls this directly).
int run_command(int argc, char** argv);
}
