#!/bin/sh
# Refresh api/docs_ui/ from the npm registry: Swagger UI's files, served by `ledger serve`
# at /docs/assets so the API docs need no CDN. Pin the version; record it in
# api/docs_ui/VERSION. Usage: sh tools/vendor-swagger-ui.sh 5.36.0
set -eu
version=${1:?usage: vendor-swagger-ui.sh VERSION}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "https://registry.npmjs.org/swagger-ui-dist/-/swagger-ui-dist-$version.tgz" | tar xz -C "$tmp"
for file in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE; do
    cp "$tmp/package/$file" "$here/api/docs_ui/$file"
done
echo "swagger-ui-dist $version (npm), Apache-2.0" > "$here/api/docs_ui/VERSION"
