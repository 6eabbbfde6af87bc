/**
 * One typed schema per service, read from the environment and validated at start.
 * An invalid value throws ConfigError naming the variable; main() prints it and exits.
 */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

interface Field<T> {
  parse(raw: string | undefined, variable: string): T;
  describe: string;
}

type Env = Record<string, string | undefined>;
export type Schema = Record<string, Field<unknown>>;
export type ConfigOf<S extends Schema> = { [K in keyof S]: S[K] extends Field<infer T> ? T : never };

function present(raw: string | undefined): raw is string {
  return raw !== undefined && raw.trim() !== '';
}

export function str(opts: { default?: string; pattern?: RegExp } = {}): Field<string> {
  return {
    describe: 'string',
    parse(raw, variable) {
      if (!present(raw)) {
        if (opts.default !== undefined) return opts.default;
        throw new ConfigError(variable, 'is required');
      }
      const value = raw.trim();
      if (opts.pattern && !opts.pattern.test(value)) {
        throw new ConfigError(variable, `"${value}" does not match ${opts.pattern}`);
      }
      return value;
    },
  };
}

export function optionalStr(): Field<string | undefined> {
  return { describe: 'string', parse: (raw) => (present(raw) ? raw.trim() : undefined) };
}

/** A secret: required, at least `minLength` characters, never echoed in errors. */
export function secret(opts: { minLength?: number } = {}): Field<string> {
  const minLength = opts.minLength ?? 16;
  return {
    describe: 'secret',
    parse(raw, variable) {
      if (!present(raw)) throw new ConfigError(variable, 'is required');
      if (raw.trim().length < minLength) {
        throw new ConfigError(variable, `must be at least ${minLength} characters`);
      }
      return raw.trim();
    },
  };
}

export function int(opts: { default?: number; min?: number; max?: number } = {}): Field<number> {
  return {
    describe: 'integer',
    parse(raw, variable) {
      if (!present(raw)) {
        if (opts.default !== undefined) return opts.default;
        throw new ConfigError(variable, 'is required');
      }
      const text = raw.trim();
      if (!/^-?\d+$/.test(text)) throw new ConfigError(variable, `"${text}" is not an integer`);
      const value = Number(text);
      if (!Number.isSafeInteger(value)) throw new ConfigError(variable, `"${text}" is out of range`);
      if (opts.min !== undefined && value < opts.min) {
        throw new ConfigError(variable, `must be >= ${opts.min}, got ${value}`);
      }
      if (opts.max !== undefined && value > opts.max) {
        throw new ConfigError(variable, `must be <= ${opts.max}, got ${value}`);
      }
      return value;
    },
  };
}

export function oneOf<const T extends string>(values: readonly T[], opts: { default?: T } = {}): Field<T> {
  return {
    describe: values.join('|'),
    parse(raw, variable) {
      if (!present(raw)) {
        if (opts.default !== undefined) return opts.default;
        throw new ConfigError(variable, `is required (one of ${values.join(', ')})`);
      }
      const value = raw.trim() as T;
      if (!values.includes(value)) {
        throw new ConfigError(variable, `"${raw.trim()}" is not one of ${values.join(', ')}`);
      }
      return value;
    },
  };
}

export function bool(opts: { default?: boolean } = {}): Field<boolean> {
  return {
    describe: 'boolean',
    parse(raw, variable) {
      if (!present(raw)) {
        if (opts.default !== undefined) return opts.default;
        throw new ConfigError(variable, 'is required');
      }
      const value = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(value)) return true;
      if (['0', 'false', 'no', 'off'].includes(value)) return false;
      throw new ConfigError(variable, `"${raw.trim()}" is not a boolean`);
    },
  };
}

export interface NamedUrl {
  name: string;
  url: string;
}

/**
 * A comma-separated list of `name=url` (or bare `url`, named after its host:port).
 * URLs must be absolute http(s) URLs; a trailing slash is dropped.
 */
export function urlList(opts: { required?: boolean } = {}): Field<NamedUrl[]> {
  return {
    describe: 'comma-separated name=url list',
    parse(raw, variable) {
      if (!present(raw)) {
        if (opts.required) throw new ConfigError(variable, 'is required');
        return [];
      }
      return raw
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== '')
        .map((part) => {
          const eq = part.indexOf('=');
          const name = eq > 0 ? part.slice(0, eq).trim() : undefined;
          const urlText = eq > 0 ? part.slice(eq + 1).trim() : part;
          let url: URL;
          try {
            url = new URL(urlText);
          } catch {
            throw new ConfigError(variable, `"${urlText}" is not a URL`);
          }
          if (url.protocol !== 'http:' && url.protocol !== 'https:') {
            throw new ConfigError(variable, `"${urlText}" must be http or https`);
          }
          const normalized = url.toString().replace(/\/+$/, '');
          return { name: name ?? url.host, url: normalized };
        });
    },
  };
}

export function databaseUrl(opts: { required?: boolean } = {}): Field<string | undefined> {
  return {
    describe: 'postgres URL',
    parse(raw, variable) {
      if (!present(raw)) {
        if (opts.required) throw new ConfigError(variable, 'is required');
        return undefined;
      }
      let url: URL;
      try {
        url = new URL(raw.trim());
      } catch {
        throw new ConfigError(variable, 'is not a URL');
      }
      if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
        throw new ConfigError(variable, 'must be a postgres:// URL');
      }
      return raw.trim();
    },
  };
}

export function readConfig<S extends Schema>(schema: S, env: Env = process.env): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  for (const [variable, field] of Object.entries(schema)) {
    out[variable] = field.parse(env[variable], variable);
  }
  return out as ConfigOf<S>;
}

/** An absolute http(s) URL, or nothing; a trailing slash is dropped. */
export function optionalHttpUrl(): Field<string | undefined> {
  return {
    describe: 'http(s) URL',
    parse(raw, variable) {
      if (!present(raw)) return undefined;
      const text = raw.trim();
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new ConfigError(variable, `"${text}" is not a URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new ConfigError(variable, `"${text}" is not an http(s) URL`);
      }
      return text.replace(/\/+$/, '');
    },
  };
}

/** A fraction between 0 and 1 (a sampling ratio). */
export function ratio(opts: { default: number }): Field<number> {
  return {
    describe: 'number between 0 and 1',
    parse(raw, variable) {
      if (!present(raw)) return opts.default;
      const text = raw.trim();
      const value = Number(text);
      if (!/^\d*\.?\d+$/.test(text) || !(value >= 0 && value <= 1)) {
        throw new ConfigError(variable, `"${text}" is not a number between 0 and 1`);
      }
      return value;
    },
  };
}
