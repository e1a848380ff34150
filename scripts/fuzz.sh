#!/usr/bin/env bash
# Bounded fuzzing of every parser and the handoff engine (`make fuzz`).
#
# Runs every cargo-fuzz target in fastpath/fuzz (the packet library and the
# handoff engine), handoff/fuzz (the control-channel decoder and the request
# classifier) and control/fuzz (the peer channel's frame reader) for
# FUZZ_SECONDS (default 30) each, starting from the committed seed corpus
# (corpus/<target>/seed_*; new inputs found are kept beside them,
# untracked). Exits non-zero if any target crashes; the crashing input is
# left in <crate>/fuzz/artifacts/.
#
# cargo-fuzz passes nightly-only flags to rustc; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. None of these crates has unsafe code, so the
# targets run without a sanitizer, which makes them several times faster;
# debug assertions (integer overflow checks) stay on.
set -euo pipefail

seconds=${FUZZ_SECONDS:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dirs=("$root/fastpath/fuzz" "$root/handoff/fuzz" "$root/control/fuzz")

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1

for fuzz_dir in "${fuzz_dirs[@]}"; do
    if ! (cd "$fuzz_dir" && cargo fuzz build --sanitizer none); then
        echo "fuzz: the fuzz targets in $fuzz_dir do not build" >&2
        exit 1
    fi
done

failed=()
for fuzz_dir in "${fuzz_dirs[@]}"; do
    cd "$fuzz_dir"
    crate=$(basename "$(dirname "$fuzz_dir")")
    for target in $(cargo fuzz list); do
        echo "fuzz: $crate/$target for ${seconds}s"
        mkdir -p "corpus/$target"
        if ! cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
            -max_total_time="$seconds" -print_final_stats=1; then
            failed+=("$crate/$target")
        fi
    done
done

if ((${#failed[@]})); then
    echo "fuzz: FAILED: ${failed[*]} (inputs in <crate>/fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a crash"
