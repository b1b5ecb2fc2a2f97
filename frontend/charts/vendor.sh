#!/usr/bin/env bash
# Install Chart.js from the npm registry as package-lock.json pins it, and copy its built
# file (and licence) into Tidings's static files, where Tidings serves it itself (no CDN,
# P29). The copy is committed: running Tidings needs no node. Run this after changing the
# version in package.json (then `npm install --package-lock-only` first).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
target=../../src/tidings/static/vendor/chartjs
mkdir -p "$target"
cp node_modules/chart.js/dist/chart.umd.min.js "$target/chart.umd.min.js"
cp node_modules/chart.js/LICENSE.md "$target/LICENSE.md"
version=$(node -p 'require("./node_modules/chart.js/package.json").version')
echo "$version" > "$target/VERSION"
echo "» Chart.js $version copied to src/tidings/static/vendor/chartjs"
