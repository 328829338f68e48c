#!/usr/bin/env bash
# Checks the include structure: no cycle between the units of a library (a unit is NAME.h + NAME.cpp), and each
# library includes only the libraries below it:
#   util  <-  models, data, plots, hub  <-  engine  <-  app   (hub: app only)
# Prints what it finds wrong and exits 1; run it from anywhere (CI runs it as the ctest test `include_structure`).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

# Allowed project includes per library (besides its own folder).
declare -A allowed=(
  [util]=""
  [models]="util"
  [data]="util"
  [plots]="util"
  [hub]="util"
  [engine]="util models data plots"
  [app]="util models data plots hub engine"
)

for lib in util models data plots hub engine app; do
  # Edges "unit included-unit" inside the library, from #include "lib/name.h" lines.
  edges=$(grep -H -o "^#include \"$lib/[a-z_0-9]*\.h\"" "$lib"/*.h "$lib"/*.cpp 2>/dev/null |
          sed -E "s#^$lib/([a-z_0-9]+)\.(h|cpp):\#include \"$lib/([a-z_0-9]+)\.h\"#\1 \3#" |
          awk '$1 != $2' | sort -u || true)
  if [[ -n $edges ]] && ! out=$(tsort <<<"$edges" 2>&1 >/dev/null) ; then :; fi
  if [[ -n ${out:-} ]]; then
    echo "include cycle in $lib/:"; echo "$out"; status=1
  fi
  out=""
  # Includes of other libraries that are not below this one.
  while IFS= read -r line; do
    [[ -z $line ]] && continue
    other=$(sed -E 's#.*\#include "([a-z]+)/.*#\1#' <<<"$line")
    [[ $other == "$lib" || " ${allowed[$lib]} " == *" $other "* ]] && continue
    echo "$lib/ must not include $other/: $line"; status=1
  done < <(grep -H "^#include \"\(util\|models\|data\|plots\|engine\|app\)/" "$lib"/*.h "$lib"/*.cpp 2>/dev/null || true)
done
[[ $status == 0 ]] && echo "include structure: no cycles, each library includes only those below it"
exit $status
