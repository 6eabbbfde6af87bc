#!/usr/bin/env node
// Writes docs/openapi.json from the one source of truth, services/front/src/openapi.ts (compiled), byte
// for byte what the front serves at GET /openapi.json. test/api/openapi.test.ts fails when they differ.
//
//   node scripts/render-openapi.mjs           rewrite docs/openapi.json (after `npm run build`)
//   node scripts/render-openapi.mjs --check   exit 1 if docs/openapi.json is not up to date
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const compiled = path.join(root, 'dist', 'services', 'front', 'src', 'openapi.js');
const target = path.join(root, 'docs', 'openapi.json');
if (!existsSync(compiled)) {
  console.error(`render-openapi: ${path.relative(root, compiled)} is missing: run \`npm run build\` first`);
  process.exit(2);
}
const { OPENAPI_JSON } = await import(pathToFileURL(compiled).href);
if (process.argv.includes('--check')) {
  const current = existsSync(target) ? readFileSync(target) : Buffer.alloc(0);
  if (!current.equals(OPENAPI_JSON)) {
    console.error('render-openapi: docs/openapi.json is stale: run `node scripts/render-openapi.mjs`');
    process.exit(1);
  }
  console.log('render-openapi: docs/openapi.json is up to date');
} else {
  writeFileSync(target, OPENAPI_JSON);
  console.log(`render-openapi: wrote docs/openapi.json (${OPENAPI_JSON.length} bytes)`);
}
