#!/usr/bin/env bash
# Bounded fuzzing of the packet library (`make fuzz`).
#
# Runs every cargo-fuzz target in fastpath/fuzz for FUZZ_SECONDS (default
# 30) each, starting from the committed seed corpus (corpus/<target>/seed_*;
# new inputs found are kept beside them, untracked). Exits non-zero if any
# target crashes; the crashing input is left in fastpath/fuzz/artifacts/.
#
# cargo-fuzz passes nightly-only flags to rustc; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. The packet library has no unsafe code, so
# the targets run without a sanitizer, which makes them several times
# faster; debug assertions (integer overflow checks) stay on.
set -euo pipefail

seconds=${FUZZ_SECONDS:-30}
fuzz_dir=$(cd "$(dirname "$0")/../fastpath/fuzz" && pwd)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
cd "$fuzz_dir"

if ! cargo fuzz build --sanitizer none; then
    echo "fuzz: the fuzz targets do not build" >&2
    exit 1
fi

failed=()
for target in $(cargo fuzz list); do
    echo "fuzz: $target for ${seconds}s"
    mkdir -p "corpus/$target"
    if ! cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: FAILED: ${failed[*]} (inputs in $fuzz_dir/artifacts/)" >&2
    exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a crash"
