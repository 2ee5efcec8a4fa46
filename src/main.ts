import 'reflect-metadata';
import { Logger } from 'nestjs-pino';
import { createApp } from './app.factory';
import { CatalogUnavailableError } from './catalog/catalog-errors';
import { probeCatalog } from './catalog/catalog.service';
import { ConfigError, loadConfig } from './config/load-config';

async function main(): Promise<void> {
  const config = loadConfig();
  // Before Nest builds anything: its own handler would print a locked catalog as a stack trace.
  probeCatalog(config);
  const app = await createApp(config);
  await app.listen(config.port, config.host);
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  app.get(Logger).log(`listening on ${url}; Swagger UI at ${url}/docs`, 'Main');
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(78);
  }
  if (error instanceof CatalogUnavailableError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(error.exitCode);
  }
  process.stderr.write(`start-up failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
