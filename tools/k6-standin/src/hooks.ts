/**
 * Module resolution for a k6 script under the stand-in: `k6`, `k6/http`, `k6/metrics` and `k6/data`
 * map to the stand-in's modules; relative imports must stay inside the load-tests tree; anything a
 * real k6 could not load (Node built-ins, npm packages) or that the stand-in does not provide (other
 * k6 modules, remote jslib URLs) fails the import with a clear message.
 */
interface Data {
  modules: Record<string, string>;
  scriptRootUrl: string;
  standinRootUrl: string;
}

interface ResolveContext {
  parentURL?: string;
}

type NextResolve = (specifier: string, context: ResolveContext) => Promise<{ url: string }>;

let data: Data;

export async function initialize(d: Data): Promise<void> {
  data = d;
}

export async function resolve(
  specifier: string,
  context: ResolveContext,
  next: NextResolve,
): Promise<{ url: string; shortCircuit?: boolean }> {
  const mapped = data.modules[specifier];
  if (mapped) return { url: mapped, shortCircuit: true };
  const parent = context.parentURL ?? '';
  // The stand-in's own modules (and the worker that imports the script) resolve normally.
  if (parent.startsWith(data.standinRootUrl)) return next(specifier, context);
  if (specifier === 'k6' || specifier.startsWith('k6/')) {
    throw new Error(
      `the k6 stand-in does not provide "${specifier}"; keep the scripts to k6, k6/http, k6/metrics and k6/data`,
    );
  }
  if (/^https?:/.test(specifier)) {
    throw new Error(`"${specifier}": remote modules are not fetched here; vendor the code into load-tests/`);
  }
  if (specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/')) {
    const resolved = await next(specifier, context);
    if (!resolved.url.startsWith(data.scriptRootUrl)) {
      throw new Error(`"${specifier}" from ${parent} leaves the load-tests directory`);
    }
    return resolved;
  }
  throw new Error(
    `"${specifier}" is not a module k6 can load (k6 scripts import k6/* modules and relative files, ` +
      'not Node built-ins or npm packages)',
  );
}
