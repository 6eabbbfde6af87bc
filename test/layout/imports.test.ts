/**
 * The import rules of docs/architecture.md, checked on the sources: the product (services/) never
 * imports a tool or a test, services never import each other (they talk HTTP), and services/shared
 * knows no service. Every relative import and every dynamic import() of a relative path is resolved
 * against the importing file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  ...(import.meta.url.includes('/dist/') ? ['..'] : []),
);
const SERVICES = path.join(ROOT, 'services');
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'node_modules' ? [] : sources(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** Every relative import of a file, as a path relative to the repository root. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(SPECIFIER)].map((m) =>
    path.relative(ROOT, path.resolve(path.dirname(file), m[2] as string)),
  );
}

/** services/<name>/... → name */
function serviceOf(repoPath: string): string | undefined {
  const parts = repoPath.split(path.sep);
  return parts[0] === 'services' ? parts[1] : undefined;
}

describe('import rules (docs/architecture.md)', () => {
  const files = sources(SERVICES);

  it('finds the product sources', () => {
    assert.ok(files.length > 20, `only ${files.length} files under services/`);
    for (const s of ['front', 'catalog', 'order', 'shared']) {
      assert.ok(
        files.some((f) => serviceOf(path.relative(ROOT, f)) === s),
        `no sources for services/${s}`,
      );
    }
  });

  it('nothing under services/ imports from outside services/ (tools, tests, scripts)', () => {
    const offenders = files.flatMap((f) =>
      relativeImports(f)
        .filter((target) => serviceOf(target) === undefined)
        .map((target) => `${path.relative(ROOT, f)} → ${target}`),
    );
    assert.deepEqual(offenders, []);
  });

  it('a service imports only itself and services/shared; shared imports no service', () => {
    const offenders = files.flatMap((f) => {
      const own = serviceOf(path.relative(ROOT, f));
      return relativeImports(f)
        .filter((target) => {
          const other = serviceOf(target);
          if (other === undefined || other === own) return false;
          return own === 'shared' || other !== 'shared';
        })
        .map((target) => `${path.relative(ROOT, f)} → ${target}`);
    });
    assert.deepEqual(offenders, []);
  });

  it('the rule catches an offender (the checker itself is not blind)', () => {
    const sample = path.join(SERVICES, 'front', 'src', 'example.ts');
    const text = "import { x } from '../../../tools/bench/src/main.js';";
    const found = [...text.matchAll(SPECIFIER)].map((m) =>
      path.relative(ROOT, path.resolve(path.dirname(sample), m[2] as string)),
    );
    assert.deepEqual(found, [path.join('tools', 'bench', 'src', 'main.js')]);
    assert.equal(serviceOf(found[0] as string), undefined);
  });
});
