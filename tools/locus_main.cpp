#include "cli/cli.h"

int main(int argc, char** argv) { return locus::cli::main(argc, argv); }
