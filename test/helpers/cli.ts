/**
 * Runs the `bpfwasm` command line in-process for tests: the exit status and what it printed
 * to stdout (console.log and process.stdout.write) and stderr (console.error).
 */
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

/** What one command printed, and its exit status. */
export interface Captured {
  code: number;
  out: string;
  err: string;
}

/** Runs `bpfwasm ...args` and captures its output. */
export async function cli(...args: string[]): Promise<Captured> {
  let out = '';
  let err = '';
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    out += `${a.join(' ')}\n`;
  });
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => {
    err += `${a.join(' ')}\n`;
  });
  const write = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk: string | Uint8Array) => {
      out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      return true;
    });
  try {
    return { code: await main(args), out, err };
  } finally {
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
}
