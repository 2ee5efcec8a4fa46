import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';
import type { ScopeStore } from './scope-store';

/** Scope values kept in the catalog, for servers without ApisCP. */
export class CatalogScopeStore implements ScopeStore {
  readonly source = 'local' as const;

  constructor(
    private readonly catalog: CatalogService,
    private readonly clock: Clock,
  ) {}

  get(name: string): Promise<string | undefined> {
    const row = this.catalog.statement('SELECT value FROM scope_values WHERE name = ?').get(name) as
      { value: string } | undefined;
    return Promise.resolve(row?.value);
  }

  set(name: string, value: string): Promise<void> {
    this.catalog
      .statement(
        `INSERT INTO scope_values (name, value, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      )
      .run(name, value, this.clock.iso());
    return Promise.resolve();
  }
}
