/**
 * blackhole: a TCP port on loopback where connects hang until the client's timeout
 * (fault F6b).
 *
 * A listening socket that never accept()s, with its accept queue filled: Linux then drops
 * further SYNs, so a client's connect() neither succeeds nor is refused. Node always accepts,
 * so the listener is a small python3 child: listen(0) (an accept queue of one), fill it with
 * non-blocking connects of its own, print the port, and wait. The child reads stdin and exits
 * at EOF, so it dies with the test process even if stop() is never reached; stop() kills it by
 * its PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
fillers = []
for _ in range(3):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fillers.append(c)
print(port, flush=True)
sys.stdin.read()
`;

export interface Blackhole {
  host: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startBlackhole(timeoutMs = 10_000): Promise<Blackhole> {
  const child = spawn('python3', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('blackhole: python3 did not report a port in time')), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      if (child.pid) child.kill('SIGKILL');
      reject(err);
    };
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`blackhole: python3 exited early (${code})`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(Number(m[1]));
      }
    });
  });
  return { host: '127.0.0.1', port, pid: child.pid!, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
