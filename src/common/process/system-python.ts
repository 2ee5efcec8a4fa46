import { accessSync, constants } from 'node:fs';

let found: string | undefined;

/**
 * The system's Python 3, for helpers that need only its standard library (the attribute walker): `/usr/bin/python3`
 * before whatever `python3` is first on PATH, which may be a version manager's shim (pyenv's costs about 70 ms of
 * forks before Python even starts, on every capture).
 */
export function systemPython(): string {
  if (found) return found;
  for (const candidate of ['/usr/bin/python3', '/usr/local/bin/python3']) {
    try {
      accessSync(candidate, constants.X_OK);
      return (found = candidate);
    } catch {
      // not there
    }
  }
  return (found = 'python3');
}
