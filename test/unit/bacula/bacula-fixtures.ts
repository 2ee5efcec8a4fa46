import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** test/fixtures/bacula, found from the compiled test (any outDir under the repo) or the working directory. */
function fixtureDir(): string {
  const candidates: string[] = [];
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir))
    candidates.push(join(dir, 'test/fixtures/bacula'));
  candidates.push(join(process.cwd(), 'test/fixtures/bacula'));
  const found = candidates.find((candidate) => existsSync(join(candidate, 'README.md')));
  if (!found) throw new Error(`test/fixtures/bacula not found from ${__dirname} or ${process.cwd()}`);
  return found;
}

const FIXTURE_DIR = fixtureDir();

/** The text of one captured bconsole session. */
export function fixture(name: string): string {
  return readFileSync(join(FIXTURE_DIR, name), 'utf8');
}
