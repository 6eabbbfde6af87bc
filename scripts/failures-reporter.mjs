// A `node --test` reporter that writes one line per failed test (file, test path, the error's first
// lines), beside the TAP on stdout. scripts/run-tests.mjs prints these lines at the very end of the run,
// so the tail of a CI log, which may be all a reader gets, names what failed.
export default async function* failuresReporter(source) {
  const path = [];
  for await (const event of source) {
    if (event.type === 'test:start') {
      path.length = event.data.nesting;
      path.push(event.data.name);
      continue;
    }
    if (event.type !== 'test:fail') continue;
    const { name, nesting, file, details } = event.data;
    const error = details?.error;
    // A suite that failed because a test inside it failed adds nothing: that test has its own line.
    if (error?.failureType === 'subtestsFailed') continue;
    const names = [...path.slice(0, nesting), name].join(' > ');
    const cause = error?.cause ?? error;
    const message = String(cause?.message ?? cause ?? 'failed')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .slice(0, 6)
      .map((line) => `    ${line.slice(0, 300)}`)
      .join('\n');
    yield `not ok: ${file ? `${file}: ` : ''}${names}\n${message}\n`;
  }
}
