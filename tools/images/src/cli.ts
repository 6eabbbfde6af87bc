/**
 * npm run images -- build [name...]    build (or find cached) every image, or the named ones
 *                  list                 the images of the last build: name, ref, size, archive
 *                  values               the helm values that make the chart use them
 *                  clean                remove our buildah storage and the cached images
 * Options of build: --rebuild NAME (repeatable) builds NAME even if its archive is current;
 * --without-toolchain skips the images made from scripts/k8s-tools.sh's binaries (CoreDNS,
 * local-path-provisioner), so the rest can be built while that toolchain compiles.
 */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildImages, cacheLayout, cleanImages, readIndex, type ImageRecord } from './index.js';
import { chartValuesYaml } from './values.js';

const USAGE = `Usage: npm run images -- <command>
  build [name...] [--rebuild name] [--without-toolchain]
                                     build the images (all, or the named ones and their bases);
                                     --without-toolchain: not those made from scripts/k8s-tools.sh's
                                     binaries (CoreDNS, local-path-provisioner)
  list                               the images of the last build
  values                             helm values for them (a values file; pass it with -f)
  clean                              remove the buildah storage and the cached images
Cache: \${BAZAR_CACHE_DIR:-~/.cache/bazar}/images (images.json, chart-values.yaml, archives/)`;

function table(records: readonly ImageRecord[]): string {
  const rows = records.map((r) => {
    let size = 'missing';
    try {
      size = `${(statSync(r.archive).size / 1048576).toFixed(0)} MiB`;
    } catch {
      // An index entry whose archive was removed by hand.
    }
    return [r.name, r.ref, size, r.archive];
  });
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ')).join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      rebuild: { type: 'string', multiple: true },
      'without-toolchain': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...names] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  switch (command) {
    case 'build': {
      const t0 = Date.now();
      const records = await buildImages({
        only: names,
        rebuild: values.rebuild ?? [],
        withoutToolchain: values['without-toolchain'] ?? false,
      });
      console.log(table(records));
      console.log(
        `${records.length} images in ${((Date.now() - t0) / 1000).toFixed(1)} s; index ${cacheLayout().index}`,
      );
      return 0;
    }
    case 'list': {
      const index = await readIndex();
      if (!index) {
        console.error(`no images built yet (${cacheLayout().index})`);
        return 1;
      }
      console.log(table(index.images));
      return 0;
    }
    case 'values': {
      const index = await readIndex();
      if (!index) {
        console.error(`no images built yet (${cacheLayout().index})`);
        return 1;
      }
      process.stdout.write(chartValuesYaml(index.chartValues));
      return 0;
    }
    case 'clean':
      await cleanImages();
      return 0;
    default:
      console.error(USAGE);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
