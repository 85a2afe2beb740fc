#!/usr/bin/env bash
# Checks that no #include runs back up the layers (docs/architecture.md):
#   importers, graph -> graph/passes -> schedule -> kernels | accel -> runtime -> cli -> api, python
# and the installed public header (include/locus/) includes none of them.
# Each rule names a folder and the folders its files must not include. Prints every offending
# include as FILE:LINE: text and exits 1; exits 0 when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
rules=(
  "graph:schedule|kernels|accel|runtime|cli|importers|exporters|models"
  "importers:graph/passes|schedule|kernels|accel|runtime|cli|exporters|models"
  "schedule:graph/passes|kernels|accel|runtime|cli|importers|exporters|models"
  "kernels:graph/passes|accel|runtime|cli|importers|exporters|models"
  "accel:kernels|runtime|cli|importers|exporters|models"
  "models:kernels|accel|runtime|cli|exporters"
  "exporters:kernels|accel|runtime|cli"
  "runtime:cli|api|python"
  "include:graph|schedule|kernels|accel|runtime|cli|importers|exporters|models|api"
)
bad=0
for r in "${rules[@]}"; do
  dir=${r%%:*} forbidden=${r#*:}
  # graph/ holds graph/passes and graph/eval: the passes may include the evaluator, not the reverse
  if out=$(grep -rnE "^#include \"($forbidden)/" "$dir" --include='*.h' --include='*.cpp' 2>/dev/null); then
    echo "$out" | sed "s#\$#   <- $dir must not include ${forbidden//|/, }#"
    bad=1
  fi
done
if out=$(grep -rnE '^#include "graph/passes/' graph --include='*.h' --include='*.cpp' | grep -v '^graph/passes/'); then
  echo "$out" | sed 's/$/   <- graph (IR, eval) must not include graph\/passes/'
  bad=1
fi
if ((bad)); then
  echo "check-layers: includes that run back up the layers (see docs/architecture.md)" >&2
  exit 1
fi
echo "check-layers: no include runs back up the layers"
