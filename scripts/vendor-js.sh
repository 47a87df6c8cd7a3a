#!/bin/sh
# Regenerate the browser verifier's vendored JavaScript (api/pages/static/vendor/).
#
# Why vendored: /verify must keep working with the network gone and under `script-src 'self'`,
# so its CBOR library is served by this service, never from a CDN. Why cborg: a maintained,
# strict (minimal integer and length encodings, no indefinite lengths, duplicate map keys
# refused), dependency-free ES module CBOR codec; a hand-written decoder would be one more
# parser of hostile input to get right.
#
# The package is fetched with `npm pack` at a pinned version and its tarball's SHA-256 is checked
# before anything is copied, so a changed or substituted release stops the script. Only the
# ES modules cborg.js imports (its whole import closure) and its LICENSE are copied.
#
# Usage: scripts/vendor-js.sh          (needs npm, tar and sha256sum)
set -eu

CBORG_VERSION=6.1.5
CBORG_SHA256=55085eb473d5d7dfb3695cb94045b171a66bdd2b7eb3092aa2a9f4460a1686ed
CBORG_FILES="cborg.js lib/0uint.js lib/1negint.js lib/2bytes.js lib/3string.js lib/4array.js
lib/5map.js lib/6tag.js lib/7float.js lib/bl.js lib/byte-utils.js lib/common.js lib/decode.js
lib/encode.js lib/is.js lib/jump.js lib/tagged.js lib/token.js LICENSE"

root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/api/pages/static/vendor/cborg"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "cborg@$CBORG_VERSION" >/dev/null)
tarball="$work/cborg-$CBORG_VERSION.tgz"
actual=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$actual" != "$CBORG_SHA256" ]; then
    echo "cborg-$CBORG_VERSION.tgz: SHA-256 $actual, expected $CBORG_SHA256; nothing copied" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$work"

rm -rf "$target"
mkdir -p "$target/lib"
for file in $CBORG_FILES; do
    cp "$work/package/$file" "$target/$file"
done
printf 'cborg %s from npm (npm pack), tarball SHA-256 %s\nRegenerate with scripts/vendor-js.sh; do not edit these files.\n' \
    "$CBORG_VERSION" "$CBORG_SHA256" > "$target/VERSION"
echo "vendored cborg $CBORG_VERSION into ${target#"$root"/}"
