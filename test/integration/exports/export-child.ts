/**
 * Runs one export in a process of its own, so a test can kill it as a crash would (SIGKILL: no cleanup at all).
 * argv[2]: JSON `{ root, env, site, engine, database }`.
 */
import { exportServices, jobContext, makeSite, testConfig } from '../../support/databases';

interface ChildRequest {
  root: string;
  env: Record<string, string>;
  virtualRoot: string;
  siteNumber: number;
  prefix: string;
  engine: 'mysql' | 'pgsql';
  database: string;
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2]) as ChildRequest;
  const services = exportServices(testConfig(request.root, request.env));
  const site = makeSite(request.virtualRoot, request.siteNumber, { [request.engine]: request.prefix });
  const entry = await services.service.exportDatabase(
    { site, engine: request.engine, database: request.database },
    jobContext(request.root),
  );
  process.stdout.write(`${JSON.stringify(entry)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
