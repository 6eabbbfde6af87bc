/**
 * Start-up checks that need no client inside the namespace: a daemon's listening sockets are visible
 * from the host in /proc/<pid>/net/tcp (that file shows the sockets of the process's network
 * namespace), and the API server is reached through the loopback forwarder.
 */
import { readFileSync } from 'node:fs';

const TCP_LISTEN = '0A';

/** Whether a process's network namespace has a TCP socket listening on `port`. */
export function listening(pid: number, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(`:${hexPort}`) && cols[3] === TCP_LISTEN) return true;
    }
  }
  return false;
}
