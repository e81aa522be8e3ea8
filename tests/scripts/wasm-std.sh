#!/usr/bin/env bash
# Makes the wasm32-wasip1 standard library available and records how to build with it in
# .tools/wasm-std-mode: "rustup" (the target is installed) or "build-std" (std is built from the
# rust-src of the exact rustc version, taken from Debian's package when rustup cannot download).
# Idempotent: does nothing when the recorded mode still works.
#   WASM_STD=build-std forces the Debian recipe (to test it where rustup works).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"
mode_file="$tools/wasm-std-mode"
sysroot=$(rustc --print sysroot)
rust_version=$(rustc --version | awk '{print $2}')
src_link="$sysroot/lib/rustlib/src/rust/library"

have_target() { rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; }

if [ "${WASM_STD:-}" != build-std ]; then
  if have_target; then echo rustup > "$mode_file"; exit 0; fi
  # rustup hangs where its download server is unreachable: bound the attempt.
  if command -v rustup >/dev/null && timeout 60 rustup target add wasm32-wasip1 >/dev/null 2>&1 && have_target; then
    echo rustup > "$mode_file"; exit 0
  fi
  echo "wasm-std: 'rustup target add wasm32-wasip1' is not possible here; using Debian's rust-src $rust_version with -Zbuild-std" >&2
fi

# The std source must be exactly rustc's version; `-e` follows the link, so a link left dangling
# by an earlier clone is replaced.
if [ -e "$src_link/std/Cargo.toml" ] && [ -f "$tools/rust-src-version" ] && [ "$(cat "$tools/rust-src-version")" = "$rust_version" ]; then
  echo build-std > "$mode_file"; exit 0
fi

# A private apt state: the machine's own sources and lists stay untouched. The mirror is the one
# already configured on this machine.
mirror=$(grep -hoE '^(URIs:|deb) *\S+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | awk '{print $NF}' | grep -v -e security -e '\[' | grep -m1 debian || true)
if [ -z "$mirror" ]; then
  echo "wasm-std: no Debian mirror configured in /etc/apt; install the wasm32-wasip1 target with rustup instead" >&2
  exit 1
fi
apt_dir="$tools/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Get::List-Cleanup=0
  -o APT::Sandbox::User=root)
# The std source is compiled into the .wasm: the archive's Release signature is checked against
# Debian's archive keyring (package debian-archive-keyring), never skipped with [trusted=yes].
# Without that file apt checks against its own trusted keys (/etc/apt/trusted.gpg.d).
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed_by=""
[ -f "$keyring" ] && signed_by="[signed-by=$keyring] "
update_log="$apt_dir/update.log"
: > "$update_log"
deb_version=""
updated=""
for suite in trixie-backports trixie forky sid; do
  echo "deb $signed_by$mirror $suite main" > "$apt_dir/sources.list"
  # A suite whose signature does not verify fails here and is skipped.
  timeout 300 apt-get "${apt_opts[@]}" -qq update >>"$update_log" 2>&1 || continue
  updated="$updated $suite"
  deb_version=$(apt-cache "${apt_opts[@]}" madison rust-src 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' \
    | grep -E "^${rust_version//./\\.}\+" | head -n1 || true)
  [ -n "$deb_version" ] && break
done
if [ -z "$updated" ]; then
  echo "wasm-std: no Debian suite from $mirror could be fetched and verified (network or signature: see $update_log)." >&2
  echo "  Install the target with: rustup target add wasm32-wasip1   (needs internet)" >&2
  exit 1
fi
if [ -z "$deb_version" ]; then
  echo "wasm-std: Debian has no rust-src $rust_version (rustc --version). Either install the target with" >&2
  echo "  rustup target add wasm32-wasip1   (needs internet), or switch to a rustc whose version Debian packages." >&2
  exit 1
fi
echo "wasm-std: downloading rust-src $deb_version from $mirror ($suite)" >&2
rm -rf "$tools/rust-src" "$tools"/rust-src_*.deb
(cd "$tools" && timeout 600 apt-get "${apt_opts[@]}" -qq download "rust-src=$deb_version")
# Unpacked, not installed: the package would conflict with rustup's toolchain.
dpkg-deb -x "$tools"/rust-src_*.deb "$tools/rust-src"
library=$(find "$tools/rust-src/usr" -maxdepth 4 -type d -name library -path '*rustc*' | head -n1)
if [ ! -f "$library/std/Cargo.toml" ]; then
  echo "wasm-std: unexpected layout in Debian's rust-src package (no library/std)" >&2
  exit 1
fi
mkdir -p "$(dirname "$src_link")"
rm -rf "$src_link"
ln -s "$library" "$src_link"
echo "$rust_version" > "$tools/rust-src-version"
echo build-std > "$mode_file"
