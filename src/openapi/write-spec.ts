import 'reflect-metadata';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createApp } from '../app.factory';
import { loadConfig } from '../config/load-config';
import { buildOpenApiDocument, sortedJson } from './openapi';

/** Generates the OpenAPI document from the code, on throw-away directories, as key-sorted JSON. */
export async function generateSpec(): Promise<string> {
  const scratch = mkdtempSync(join(tmpdir(), 'apiscp-spec-'));
  try {
    writeFileSync(join(scratch, 'tokens.json'), '[]');
    mkdirSync(join(scratch, 'virtual'));
    const config = loadConfig({
      VIRTUAL_ROOT: join(scratch, 'virtual'),
      DATA_DIR: join(scratch, 'data'),
      APNSCP_ROOT: join(scratch, 'apnscp'),
      API_TOKENS_FILE: join(scratch, 'tokens.json'),
      LOG_LEVEL: 'silent',
      LOG_FORMAT: 'json',
      PROVIDERS: 'duplicity,bacula',
    });
    const app = await createApp(config);
    const spec = sortedJson(buildOpenApiDocument(app));
    await app.close();
    return spec;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const target = process.argv[2] ?? 'openapi/openapi.json';
  generateSpec()
    .then((spec) => {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, spec);
      process.stdout.write(`wrote ${target}\n`);
    })
    .catch((error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exit(1);
    });
}
