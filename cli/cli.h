// The `locus` command-line program: run, info, check (and later bench, energy, decompose).
#pragma once

namespace locus::cli {
int main(int argc, char** argv);
}
