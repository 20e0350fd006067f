#!/usr/bin/env bash
# Regenerate grafana-dashboard.schema.json from Grafana's own TypeScript dashboard types.
# Run by hand when moving to a newer Grafana (needs npm); CI only reads the committed file.
set -euo pipefail
GRAFANA_SCHEMA_VERSION=${1:-13.2.3}
GENERATOR_VERSION=2.4.0
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm install --silent --no-audit --no-fund \
    "@grafana/schema@$GRAFANA_SCHEMA_VERSION" "ts-json-schema-generator@$GENERATOR_VERSION"
npx ts-json-schema-generator --no-type-check --type Dashboard \
    --path node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts -o raw.json
python3 - "$GRAFANA_SCHEMA_VERSION" "$GENERATOR_VERSION" "$HERE/grafana-dashboard.schema.json" <<'PY'
import json, sys
version, generator, out = sys.argv[1:]
schema = json.load(open("raw.json"))
comment = (f"Generated, do not edit: ts-json-schema-generator {generator} --type Dashboard "
           f"--no-type-check from @grafana/schema {version} dist/types/raw/dashboard/x/types.gen.d.ts "
           "(tests/deploy/regenerate-grafana-schema.sh)")
json.dump({"$comment": comment, **schema}, open(out, "w"), indent=1)
PY
echo "wrote $HERE/grafana-dashboard.schema.json (@grafana/schema $GRAFANA_SCHEMA_VERSION)"
