#!/usr/bin/env bash
# Build the cargo-fuzz targets in fuzz/ and run each one, or only TARGET,
# for SECONDS seconds (default 60), one after another.
#
# Usage: scripts/fuzz.sh [TARGET] [SECONDS]
#        scripts/fuzz.sh 300        # every target, 300 s each
#
# Runs on stable Rust with `--sanitizer none`, so no nightly toolchain and
# no RUSTC_BOOTSTRAP. New corpus entries go to fuzz/work/corpus/TARGET
# (ignored by git); the committed seeds in fuzz/corpus/TARGET are read but
# never written. A failing input is saved under fuzz/artifacts/TARGET.
# Extra libFuzzer flags can be passed in FUZZ_FLAGS, for example
# FUZZ_FLAGS="-jobs=1 -seed=1".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"

target=""
seconds=60
for argument in "$@"; do
    if [[ "$argument" =~ ^[0-9]+$ ]]; then
        seconds="$argument"
    else
        target="$argument"
    fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing; installing it with cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi

cd "$root"
all_targets="$(cargo fuzz list --fuzz-dir "$fuzz_dir")"
if [[ -n "$target" ]]; then
    if ! grep -qx "$target" <<<"$all_targets"; then
        echo "unknown fuzz target: $target (known: $(echo $all_targets))" >&2
        exit 2
    fi
    targets="$target"
else
    targets="$all_targets"
fi

echo "building the fuzz targets (release, --sanitizer none)"
cargo fuzz build --fuzz-dir "$fuzz_dir" --sanitizer none

mkdir -p "$fuzz_dir/work/logs"
failed=()
summary=()
for name in $targets; do
    work_corpus="$fuzz_dir/work/corpus/$name"
    seeds="$fuzz_dir/corpus/$name"
    log="$fuzz_dir/work/logs/$name.log"
    mkdir -p "$work_corpus" "$seeds"

    flags=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
    if [[ -f "$fuzz_dir/dict/$name.dict" ]]; then
        flags+=(-dict="$fuzz_dir/dict/$name.dict")
    fi
    # shellcheck disable=SC2206 # FUZZ_FLAGS is split into words on purpose.
    flags+=(${FUZZ_FLAGS:-})

    echo "running $name for $seconds s (log: ${log#"$root"/})"
    started=$(date +%s)
    status=0
    cargo fuzz run --fuzz-dir "$fuzz_dir" --sanitizer none "$name" "$work_corpus" "$seeds" \
        -- "${flags[@]}" >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - started))

    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    corpus_files="$(find "$work_corpus" -type f | wc -l)"
    if [[ "$status" -eq 0 ]]; then
        result="no finding"
    else
        result="FAILED (exit $status), see $log and fuzz/artifacts/$name"
        failed+=("$name")
        tail -n 40 "$log" >&2
    fi
    line="$name: ${runs:-?} runs in $elapsed s, corpus $corpus_files files, $result"
    echo "$line"
    summary+=("$line")
done

echo
echo "summary"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "failed targets: ${failed[*]}" >&2
    exit 1
fi
