/**
 * Preloaded into a service process (`NODE_OPTIONS=--import=<this file>`; Node 20 refuses --cpu-prof
 * there) by the profiler (`npm run bench -- --profile`, profile.ts): starts V8's sampling CPU profiler at once and, on SIGUSR2, writes
 * what it sampled to `$BAZAR_CPU_PROFILE_DIR/<SERVICE_NAME>.cpuprofile` and starts afresh, so the
 * profiler can cut out exactly the window of its load.
 */
import { Session } from 'node:inspector';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.env['BAZAR_CPU_PROFILE_DIR'] ?? '.';
const name = process.env['SERVICE_NAME'] ?? String(process.pid);
const session = new Session();
session.connect();

function post(method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
  );
}

await post('Profiler.enable');
await post('Profiler.setSamplingInterval', {
  interval: Number(process.env['BAZAR_CPU_PROFILE_INTERVAL_US'] ?? 500),
});
await post('Profiler.start');

process.on('SIGUSR2', () => {
  void (async () => {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    // Written aside and renamed: whoever waits for the file never reads half of it.
    const file = path.join(dir, `${name}.cpuprofile`);
    writeFileSync(`${file}.tmp`, JSON.stringify(profile));
    renameSync(`${file}.tmp`, file);
    await post('Profiler.start');
  })();
});
