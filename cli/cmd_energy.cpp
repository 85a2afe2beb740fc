// locus energy: placeholder until the command lands.
#include "cli/commands.h"
#include "graph/error.h"

namespace locus::cli {

int cmd_energy(int, char**) { throw Error("locus energy is not built yet"); }

}  // namespace locus::cli
