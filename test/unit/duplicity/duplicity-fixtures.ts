import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseLogRecords, type DuplicityRecord } from '../../../src/providers/duplicity/duplicity-log-fd';

export interface FixtureMeta {
  case: string;
  command: string[];
  exitCode: number;
  durationMs: number;
  stderr: string;
}

/** test/fixtures/duplicity, found from the compiled test (any outDir under the repo) or the working directory. */
function fixtureDir(): string {
  const candidates: string[] = [];
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir))
    candidates.push(join(dir, 'test/fixtures/duplicity'));
  candidates.push(join(process.cwd(), 'test/fixtures/duplicity'));
  const found = candidates.find((candidate) => existsSync(join(candidate, 'README.md')));
  if (!found) throw new Error(`test/fixtures/duplicity not found from ${__dirname} or ${process.cwd()}`);
  return found;
}

export const FIXTURE_DIR = fixtureDir();

export function fixtureCases(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((name) => name.endsWith('.log'))
    .map((name) => name.slice(0, -'.log'.length))
    .sort();
}

export function fixtureLog(name: string): string {
  return readFileSync(join(FIXTURE_DIR, `${name}.log`), 'utf8');
}

export function fixtureRecords(name: string): DuplicityRecord[] {
  return parseLogRecords(fixtureLog(name));
}

export function fixtureMeta(name: string): FixtureMeta {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, `${name}.meta.json`), 'utf8')) as FixtureMeta;
}

export function fixtureLines(file: string): string[] {
  return readFileSync(join(FIXTURE_DIR, file), 'utf8')
    .split('\n')
    .filter((line) => line !== '');
}
