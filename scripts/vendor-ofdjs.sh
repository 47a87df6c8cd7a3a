#!/bin/sh
# Regenerate the OFD reader the independent-reader tests load in Chromium (tests/vendor/ofd.js/).
#
# Why vendored: tests/test_ofd_reader.py opens every OFD licence in a reader that is not ours —
# ofd.js (DLTech21, Apache-2.0), a browser OFD renderer that also parses the GB/T 38540 seal,
# draws its picture at the stamp annotation and checks the SM3 digests and the SM2 signature
# with sm-crypto — and the tests must run with the network gone and always judge with the same
# code, so a pinned release is kept in the tree, never fetched at test time. It is a test tool
# only: it is never served to users.
#
# Why 0.2.6 and not the registry's "latest" (1.5.0): 1.5.0 is a wrapper around a separately
# licensed core (parser_helper_x.js, with "secret"/"digest" authorisation parameters) that is
# fetched as a dependency; 0.2.6 is the open-source renderer itself. Its tarball ships a
# finished UMD bundle (lib/ofd.umd.min.js: the renderer with jszip, x2js, @lapo/asn1js,
# sm-crypto, jsrsasign, js-md5, js-sha1, core-js and the Babel runtime inside it), so nothing
# needs bundling: that one file is the minimal build. Vue and element-ui, which the package
# lists for its demo viewer, are not in it.
#
# The package is fetched with `npm pack` at a pinned version and its tarball's SHA-256 is checked
# before anything is copied, so a changed or substituted release stops the script; the bundle's
# own SHA-256 is written to VERSION, and the tests check the file against it.
#
# Usage: scripts/vendor-ofdjs.sh          (needs npm, tar and sha256sum)
set -eu

OFDJS_VERSION=0.2.6
OFDJS_SHA256=ec96a0966f66f8d1740e18eb231c6683de63020c6dde15be6aeb19778d912685
BUNDLE=lib/ofd.umd.min.js

root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/tests/vendor/ofd.js"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "ofd.js@$OFDJS_VERSION" >/dev/null)
tarball="$work/ofd.js-$OFDJS_VERSION.tgz"
actual=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$actual" != "$OFDJS_SHA256" ]; then
    echo "ofd.js-$OFDJS_VERSION.tgz: SHA-256 $actual, expected $OFDJS_SHA256; nothing copied" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$work"

rm -rf "$target"
mkdir -p "$target"
cp "$work/package/$BUNDLE" "$target/ofd.umd.min.js"
cp "$work/package/LICENSE" "$target/LICENSE"
# What the bundle holds besides ofd.js itself (from its source map), with the licences their
# packages declare: the bundle is redistributed only inside this test tree.
cat > "$target/THIRD-PARTY.txt" <<'NOTICE'
ofd.umd.min.js bundles, besides ofd.js (Apache-2.0, DLTech21) and its jbig2 decoder taken from
pdf.js (Apache-2.0), these npm packages, under the licences their packages declare:
  jszip (MIT OR GPL-3.0-or-later; used under MIT), jszip-utils (MIT OR GPL-3.0; used under MIT),
  ofd-xml-parser ("MIT Modified"), sm-crypto (MIT), jsbn (MIT), @lapo/asn1js (ISC),
  jsrsasign (MIT), js-md5 (MIT), js-sha1 (MIT), base64-js (MIT), ieee754 (BSD-3-Clause),
  buffer (MIT), isarray (MIT), path-browserify (MIT), node-libs-browser (MIT),
  web-streams-polyfill (MIT), core-js (MIT), regenerator-runtime (MIT), @babel/runtime (MIT),
  @soda/get-current-script (MIT).
NOTICE
bundle_sha=$(sha256sum "$target/ofd.umd.min.js" | cut -d' ' -f1)
printf 'ofd.js %s from npm (npm pack), tarball SHA-256 %s\n%s SHA-256 %s\nRegenerate with scripts/vendor-ofdjs.sh; do not edit these files.\n' \
    "$OFDJS_VERSION" "$OFDJS_SHA256" "ofd.umd.min.js" "$bundle_sha" > "$target/VERSION"
echo "vendored ofd.js $OFDJS_VERSION into ${target#"$root"/}"
