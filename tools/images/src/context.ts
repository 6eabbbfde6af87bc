/**
 * The build context as the builder sees it: every file under the context directory that
 * .dockerignore lets through, with a digest of its content and executable bit. The service images'
 * cache key is made of this list (plus the Dockerfile and the build arguments).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { isIgnored, mayReinclude, parseDockerignore, type IgnorePattern } from './dockerignore.js';

export interface ContextFile {
  /** Relative to the context, slash-separated. */
  path: string;
  /** sha256 of the content (of the link target string, for a symbolic link). */
  sha256: string;
  executable: boolean;
}

async function readIgnore(contextDir: string): Promise<IgnorePattern[]> {
  try {
    return parseDockerignore(await fs.readFile(path.join(contextDir, '.dockerignore'), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function fileDigest(full: string, isLink: boolean): Promise<string> {
  const data = isLink ? Buffer.from(await fs.readlink(full)) : await fs.readFile(full);
  return createHash('sha256').update(data).digest('hex');
}

async function walk(
  contextDir: string,
  rel: string,
  patterns: readonly IgnorePattern[],
  out: ContextFile[],
): Promise<void> {
  const entries = await fs.readdir(path.join(contextDir, rel), { withFileTypes: true });
  for (const entry of entries) {
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    const ignored = isIgnored(patterns, relPath);
    if (entry.isDirectory()) {
      if (!ignored || mayReinclude(patterns, relPath)) await walk(contextDir, relPath, patterns, out);
      continue;
    }
    if (ignored || !(entry.isFile() || entry.isSymbolicLink())) continue;
    const full = path.join(contextDir, relPath);
    const stat = await fs.lstat(full);
    out.push({
      path: relPath,
      sha256: await fileDigest(full, entry.isSymbolicLink()),
      executable: (stat.mode & 0o111) !== 0,
    });
  }
}

/** The files of the build context in `contextDir`, sorted by path. */
export async function contextFiles(contextDir: string): Promise<ContextFile[]> {
  const patterns = await readIgnore(contextDir);
  const out: ContextFile[] = [];
  await walk(contextDir, '', patterns, out);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
