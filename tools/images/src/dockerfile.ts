/**
 * What tools/images needs to know of a Dockerfile before building it with buildah: which images it
 * is built on, so that each official base can be swapped for its stand-in (no registry here), and
 * which ARGs it declares, so that build-only settings are passed only to the Dockerfiles that take
 * them. A base can be swapped only through a global ARG (declared before the first FROM, with the
 * official image as its default) that a FROM line uses whole:
 *
 *   ARG NODE_IMAGE=node:20-bookworm-slim       built here with --build-arg NODE_IMAGE=<stand-in>
 *   FROM ${NODE_IMAGE} AS deps
 *
 * A FROM that names an image directly would be pulled, which cannot work here: it is reported.
 */

export interface BaseArg {
  /** The global ARG a FROM line uses as its image. */
  arg: string;
  /** Its default: the official image the Dockerfile is written for ('' when it has none). */
  image: string;
}

export interface DockerfileInfo {
  /** Global ARGs used whole as a FROM image, each once, in order of first use. */
  baseArgs: BaseArg[];
  /** Images FROM names directly (not an earlier stage, not scratch, not a base ARG): they would be pulled. */
  pulledImages: string[];
  /** Every ARG the Dockerfile declares, global or in a stage. */
  args: Set<string>;
}

/** Logical lines: continuations joined, comment and blank lines dropped (also inside a continuation). */
function instructions(text: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('#') || line === '') continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') out.push(current.trim());
    current = '';
  }
  if (current.trim() !== '') out.push(current.trim());
  return out;
}

function unquote(value: string): string {
  const q = value[0];
  return (q === '"' || q === "'") && value.endsWith(q) && value.length >= 2 ? value.slice(1, -1) : value;
}

/** `ARG A=1 B` → [['A', '1'], ['B', undefined]] (quoted defaults keep their spaces). */
function argDeclarations(rest: string): Array<[string, string | undefined]> {
  const out: Array<[string, string | undefined]> = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)(?:=("[^"]*"|'[^']*'|\S*))?/gy;
  let at = 0;
  while (at < rest.length) {
    while (rest[at] === ' ' || rest[at] === '\t') at++;
    if (at >= rest.length) break;
    re.lastIndex = at;
    const m = re.exec(rest);
    if (!m) throw new Error(`ARG ${rest}: cannot read the declaration at "${rest.slice(at)}"`);
    out.push([m[1]!, m[2] === undefined ? undefined : unquote(m[2])]);
    at = re.lastIndex;
  }
  return out;
}

export function parseDockerfile(text: string): DockerfileInfo {
  const globals = new Map<string, string | undefined>();
  const args = new Set<string>();
  const stages = new Set<string>();
  const baseArgs: BaseArg[] = [];
  const pulledImages: string[] = [];
  let seenFrom = false;
  for (const line of instructions(text)) {
    const space = line.search(/\s/);
    const keyword = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const rest = space < 0 ? '' : line.slice(space + 1).trim();
    if (keyword === 'ARG') {
      for (const [name, value] of argDeclarations(rest)) {
        args.add(name);
        if (!seenFrom) globals.set(name, value);
      }
    } else if (keyword === 'FROM') {
      seenFrom = true;
      const words = rest.split(/\s+/).filter((w) => !w.startsWith('--'));
      const image = words[0] ?? '';
      if (words.length >= 3 && words[1]!.toUpperCase() === 'AS') stages.add(words[2]!.toLowerCase());
      const whole = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$/.exec(image);
      const arg = whole ? (whole[1] ?? whole[2])! : undefined;
      if (arg !== undefined && globals.has(arg)) {
        if (!baseArgs.some((b) => b.arg === arg)) baseArgs.push({ arg, image: globals.get(arg) ?? '' });
      } else if (image.toLowerCase() !== 'scratch' && !stages.has(image.toLowerCase())) {
        pulledImages.push(image);
      }
    }
  }
  return { baseArgs, pulledImages, args };
}

/** An image reference as containerd and the registries name it: `postgres:18` → docker.io/library/postgres:18. */
export function normaliseImageRef(ref: string): string {
  const slash = ref.indexOf('/');
  if (slash < 0) return `docker.io/library/${ref}`;
  const first = ref.slice(0, slash);
  if (first === 'localhost' || first.includes('.') || first.includes(':')) return ref;
  return `docker.io/${ref}`;
}
