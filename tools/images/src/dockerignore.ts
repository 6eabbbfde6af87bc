/**
 * .dockerignore, with the semantics of the Docker/BuildKit/buildah build context (moby's
 * patternmatcher, which buildah shares through containers/storage): patterns are cleaned like Go's
 * filepath.Clean, `*` and `?` never cross a `/`, `**` crosses any number of directories, a leading
 * `!` re-includes, the LAST matching pattern decides, and a pattern that matches a parent directory
 * matches everything below it.
 *
 * The image cache key hashes exactly the files this lets into the build context, so an edit to a
 * test file or a doc does not rebuild the service images, while any file the build can see does.
 */
import * as path from 'node:path';

export interface IgnorePattern {
  /** The cleaned pattern, without its `!`. */
  pattern: string;
  /** A `!pattern` line: re-includes what earlier lines excluded. */
  exclusion: boolean;
  regex: RegExp;
}

const REGEX_SPECIAL = new Set(['.', '+', '(', ')', '{', '}', '|', '^', '$']);

/** Go's filepath.Clean for slash paths, minus a leading `/` (patterns are relative to the context). */
function cleanPattern(p: string): string {
  let clean = path.posix.normalize(p);
  if (clean.length > 1 && clean.endsWith('/')) clean = clean.slice(0, -1);
  if (clean.length > 1 && clean.startsWith('/')) clean = clean.slice(1);
  return clean;
}

/** The pattern as an anchored regular expression (moby's Pattern.compile). */
export function compilePattern(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // `**/` is the same as `**`.
        if (pattern[i + 1] === '/') i++;
        // A trailing `**` matches everything; elsewhere any number of whole directories.
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      // Escapes the next character; a trailing backslash stands for itself.
      const next = pattern[i + 1];
      if (next === undefined) re += '\\\\';
      else {
        re += next.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
        i++;
      }
    } else if (REGEX_SPECIAL.has(ch)) {
      re += `\\${ch}`;
    } else {
      // Letters, `/`, and `[...]` character classes, which mean the same in both syntaxes.
      re += ch;
    }
  }
  return new RegExp(`${re}$`);
}

/** The lines of a .dockerignore file as patterns (comments and blank lines dropped). */
export function parseDockerignore(text: string): IgnorePattern[] {
  const patterns: IgnorePattern[] = [];
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (raw.startsWith('#')) continue;
    let line = raw.trim();
    if (line === '') continue;
    const exclusion = line.startsWith('!');
    if (exclusion) line = line.slice(1).trim();
    if (line === '') throw new Error('.dockerignore: illegal exclusion pattern "!"');
    const pattern = cleanPattern(line);
    patterns.push({ pattern, exclusion, regex: compilePattern(pattern) });
  }
  return patterns;
}

function matchesSelfOrParent(p: IgnorePattern, file: string): boolean {
  if (p.regex.test(file)) return true;
  const dirs = path.posix.dirname(file);
  if (dirs === '.') return false;
  const parts = dirs.split('/');
  for (let i = 1; i <= parts.length; i++) {
    if (p.regex.test(parts.slice(0, i).join('/'))) return true;
  }
  return false;
}

/** Is this context-relative, slash-separated path left out of the build context? */
export function isIgnored(patterns: readonly IgnorePattern[], file: string): boolean {
  let ignored = false;
  for (const p of patterns) {
    // An include line cannot change an excluded verdict into excluded, nor an exclusion an included one.
    if (p.exclusion !== ignored) continue;
    if (matchesSelfOrParent(p, file)) ignored = !p.exclusion;
  }
  return ignored;
}

/**
 * Must the walk descend into this ignored directory? Only if a `!` pattern could re-include
 * something below it (the same shortcut the Docker context walker takes).
 */
export function mayReinclude(patterns: readonly IgnorePattern[], dir: string): boolean {
  const prefix = `${dir}/`;
  return patterns.some((p) => p.exclusion && `${p.pattern}/`.startsWith(prefix));
}
