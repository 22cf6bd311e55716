#!/usr/bin/env bash
# Re-fetch the vendored front-end files from the npm registry and check them against
# static/vendor/SHA256SUMS. Usage: tools/vendor.sh [--update-sums]
# The list below is the single source of truth: npm package@version, file in the package, path here.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=(
  "htmx.org@2.0.11 package/dist/htmx.min.js static/vendor/htmx/htmx-2.0.11.min.js"
  "htmx.org@2.0.11 package/LICENSE static/vendor/htmx/LICENSE"
  "htmx-ext-ws@2.0.4 package/dist/ws.min.js static/vendor/htmx/ext-ws-2.0.4.min.js"
  "htmx-ext-ws@2.0.4 package/LICENSE static/vendor/htmx/LICENSE-ext-ws"
  "swagger-ui-dist@5.35.0 package/swagger-ui-bundle.js static/vendor/swagger-ui/swagger-ui-bundle.js"
  "swagger-ui-dist@5.35.0 package/swagger-ui-standalone-preset.js static/vendor/swagger-ui/swagger-ui-standalone-preset.js"
  "swagger-ui-dist@5.35.0 package/swagger-ui.css static/vendor/swagger-ui/swagger-ui.css"
  "swagger-ui-dist@5.35.0 package/LICENSE static/vendor/swagger-ui/LICENSE"
  "swagger-ui-dist@5.35.0 package/favicon-32x32.png static/vendor/swagger-ui/favicon-32x32.png"
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for line in "${FILES[@]}"; do
  read -r spec inner dest <<<"$line"
  dir="$work/${spec//[@\/]/_}"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
  fi
  mkdir -p "$(dirname "$dest")"
  cp "$dir/$inner" "$dest"
  echo "$spec $inner -> $dest"
done
if [ "${1:-}" = "--update-sums" ]; then
  (cd static/vendor && find . -type f ! -name README ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS)
fi
(cd static/vendor && sha256sum --check --quiet SHA256SUMS) && echo "static/vendor matches SHA256SUMS"
