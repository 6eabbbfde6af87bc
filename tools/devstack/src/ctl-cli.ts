/** `npm run ctl -- <command>`: see CTL_USAGE in ctl.ts. */
import { CTL_USAGE, CtlUsageError, parseCtl, runCtl } from './ctl.js';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseCtl(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof CtlUsageError)) throw err;
    process.stderr.write(`ctl: ${err.message}\nRun with --help for the commands.\n`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(CTL_USAGE);
    return 0;
  }
  const { code, out, err } = await runCtl(parsed.request, parsed.dataDir);
  process.stdout.write(out);
  process.stderr.write(err ? `ctl: ${err}` : '');
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ctl: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
