// locus decompose: placeholder until the command lands.
#include "cli/commands.h"
#include "graph/error.h"

namespace locus::cli {

int cmd_decompose(int, char**) { throw Error("locus decompose is not built yet"); }

}  // namespace locus::cli
