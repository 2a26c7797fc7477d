#!/usr/bin/env bash
# Line coverage of each module of Sources/ by the whole test suite, and a failure when a module is
# below MINIMUM percent (default 0: report only; pass 80 to hold the bar).
#
# The instrumented build lives in .build-coverage, apart from the everyday .build (the first run
# builds everything once, about ten minutes on two cores).
#
#   Scripts/coverage.sh [MINIMUM]
set -euo pipefail
cd "$(dirname "$0")/.."

minimum="${1:-0}"
scratch=".build-coverage"

tests=0
swift test --enable-code-coverage --scratch-path "$scratch" || tests=$?

# Merged here rather than by SwiftPM, which merges only after a passing run: a failing test still
# leaves a report (and this script still fails).
codecov="$(dirname "$(find "$scratch" -name '*.profraw' -path '*codecov*' | head -1)")"
binary="$(find "$scratch/debug/" -maxdepth 1 -name '*PackageTests.xctest' | head -1)"
[ -d "$codecov" ] && [ -n "$binary" ] || { echo "coverage: no profiles or test binary under $scratch" >&2; exit 1; }
toolchain="$(dirname "$(command -v swift)")"
# The toolchain's own LLVM tools: a system LLVM of another version cannot read Swift's profiles.
llvm_cov="$toolchain/llvm-cov"
llvm_profdata="$toolchain/llvm-profdata"
profile="$codecov/merged.profdata"
"$llvm_profdata" merge -sparse "$codecov"/*.profraw -o "$profile"

# The CLI tests run the instrumented `strive` executable as a subprocess; its profile lands beside the
# test binary's (same LLVM_PROFILE_FILE pattern), so its object is reported too.
objects=("$binary")
[ -x "$scratch/debug/strive" ] && objects+=(-object "$scratch/debug/strive")
"$llvm_cov" export -summary-only -instr-profile "$profile" "${objects[@]}" > "$codecov/summary.json"
python3 - "$codecov/summary.json" "$minimum" "$PWD/Sources/" << 'PY'
import json, sys
summary, minimum, root = sys.argv[1], float(sys.argv[2]), sys.argv[3]
modules = {}
for entry in json.load(open(summary))["data"][0]["files"]:
    name = entry["filename"]
    if not name.startswith(root):
        continue
    module = name[len(root):].split("/")[0]
    lines = entry["summary"]["lines"]
    total, covered = modules.get(module, (0, 0))
    modules[module] = (total + lines["count"], covered + lines["covered"])
row = "{:<20} {:>7} {:>8} {:>8}"
print(row.format("module", "lines", "covered", "percent"))
failed = []
for module, (total, covered) in sorted(modules.items()):
    percent = 100.0 * covered / total if total else 100.0
    mark = "" if percent >= minimum else "  below {:.0f}".format(minimum)
    print(row.format(module, total, covered, "{:.1f}%".format(percent)) + mark)
    if percent < minimum:
        failed.append(module)
all_total = sum(t for t, _ in modules.values())
all_covered = sum(c for _, c in modules.values())
print(row.format("all", all_total, all_covered, "{:.1f}%".format(100.0 * all_covered / all_total)))
sys.exit(1 if failed else 0)
PY
exit "$tests"
