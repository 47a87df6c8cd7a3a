#!/bin/sh
# Regenerate the accessibility tests' vendored axe-core (tests/vendor/axe-core/).
#
# Why vendored: tests/test_accessibility.py injects axe-core into every page the service serves
# and fails on any WCAG 2.1 A/AA violation; the tests must run with the network gone and always
# judge with the same rules, so a pinned release is kept in the tree, never fetched at test time.
# axe-core is a test tool only: it is never served to users.
#
# The package is fetched with `npm pack` at a pinned version and its tarball's SHA-256 is checked
# before anything is copied, so a changed or substituted release stops the script. Only
# axe.min.js and its licences are copied.
#
# Usage: scripts/vendor-axe.sh          (needs npm, tar and sha256sum)
set -eu

AXE_VERSION=4.11.0
AXE_SHA256=39bed7d72308f6d620789c169d699bfd7e8da80f65b545821a6b2215c3e83107
AXE_FILES="axe.min.js LICENSE LICENSE-3RD-PARTY.txt"

root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/tests/vendor/axe-core"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null)
tarball="$work/axe-core-$AXE_VERSION.tgz"
actual=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$actual" != "$AXE_SHA256" ]; then
    echo "axe-core-$AXE_VERSION.tgz: SHA-256 $actual, expected $AXE_SHA256; nothing copied" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$work"

rm -rf "$target"
mkdir -p "$target"
for file in $AXE_FILES; do
    cp "$work/package/$file" "$target/$file"
done
printf 'axe-core %s from npm (npm pack), tarball SHA-256 %s\nRegenerate with scripts/vendor-axe.sh; do not edit these files.\n' \
    "$AXE_VERSION" "$AXE_SHA256" > "$target/VERSION"
echo "vendored axe-core $AXE_VERSION into ${target#"$root"/}"
