#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the hyper peer of bench/run.sh (bench/peers/hyper: hyper 0.14 on a tokio
# current-thread runtime) into build/bench/hyper-bench, offline, from Debian packages only:
# cargo and rustc, and the crate sources that librust-hyper-dev, librust-tokio-dev and
# librust-serde-json-dev (with their dependencies) install under /usr/share/cargo/registry.
# Cargo reads that directory as a source replacement for crates.io; CARGO_HOME is a private
# directory in build/, so neither ~/.cargo nor a rustup toolchain on PATH takes part.
#
# Usage: bench/peers/build_hyper.sh [-f]     (-f: rebuild even if the binary is up to date)
# Exit status: 0 built or up to date; 2 a package is missing (why on stdout, nothing built);
# 1 the build failed. Progress goes to stderr. Variables: BUILD (default build/),
# HYPER_CARGO, HYPER_RUSTC (default /usr/bin/cargo, /usr/bin/rustc: Debian's).
set -uo pipefail

PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PEERS/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SRC=$PEERS/hyper
WORK=$BUILD/bench/hyper
BIN=$BUILD/bench/hyper-bench
REGISTRY=/usr/share/cargo/registry
CARGO=${HYPER_CARGO:-/usr/bin/cargo}
RUSTC=${HYPER_RUSTC:-/usr/bin/rustc}
PKGS="cargo rustc librust-hyper-dev librust-tokio-dev librust-serde-json-dev librust-serde-derive-dev"

missing=()
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ ! -x "$CARGO" ] || [ ! -x "$RUSTC" ]; then
    echo "Debian packages missing: ${missing[*]:-cargo rustc} (scripts/deps.sh bench installs them)"
    exit 2
fi

if [ "${1:-}" != -f ] && [ -x "$BIN" ] && [ "$BIN" -nt "$SRC/Cargo.toml" ] &&
   [ "$BIN" -nt "$SRC/src/main.rs" ] && [ "$BIN" -nt "${BASH_SOURCE[0]}" ]; then
    exit 0
fi

# A copy of the sources, so the Cargo.lock and target/ cargo writes stay in build/.
mkdir -p "$WORK/src" "$WORK/.cargo" "$WORK/cargo-home"
cp "$SRC/Cargo.toml" "$WORK/Cargo.toml"
cp "$SRC/src/main.rs" "$WORK/src/main.rs"
rm -f "$WORK/Cargo.lock" # resolved again against whatever Debian ships now
cat > "$WORK/.cargo/config.toml" <<CONF
# Written by bench/peers/build_hyper.sh: crates come from Debian's packages, never the network.
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$REGISTRY"

[net]
offline = true
CONF

echo "bench: building the hyper peer (2-3 min): $CARGO build --release --offline (in ${WORK#"$ROOT"/})" >&2
if ! (cd "$WORK" && CARGO_HOME="$WORK/cargo-home" RUSTC="$RUSTC" \
        "$CARGO" build --release --offline --quiet --target-dir "$WORK/target" >&2); then
    echo "bench: building the hyper peer failed (see above)" >&2
    exit 1
fi
cp "$WORK/target/release/hyper-bench" "$BIN.tmp" && mv "$BIN.tmp" "$BIN" || exit 1
# The crate versions that went in, for the results' header.
awk '/^name = / { n = $3 } /^version = / && n ~ /"(hyper|tokio|serde_json)"/ {
        gsub(/"/, "", n); gsub(/"/, "", $3); printf "%s%s %s", sep, n, $3; sep = ", "; n = "" }
     END { print "" }' "$WORK/Cargo.lock" > "$BIN.versions"
echo "bench: built ${BIN#"$ROOT"/} ($(cat "$BIN.versions"), $("$RUSTC" --version))" >&2
