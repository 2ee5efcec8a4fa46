import { Injectable } from '@nestjs/common';
import { CatalogService } from '../catalog/catalog.service';
import type { Policy } from './policy';

interface Row {
  id: string;
  name: string;
  body: string;
  is_default: number;
  created_at: string;
  updated_at: string;
}

type PolicyBodyFields = Omit<Policy, 'id' | 'default' | 'createdAt' | 'updatedAt' | 'name'>;

/** Policies and per-site assignments in the catalog. */
@Injectable()
export class PolicyStore {
  private cache: { policies: Map<string, Policy>; assignments: Map<string, string> } | null = null;

  constructor(private readonly catalog: CatalogService) {}

  list(): Policy[] {
    return [...this.snapshot().policies.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(id: string): Policy | undefined {
    return this.snapshot().policies.get(id);
  }

  byName(name: string): Policy | undefined {
    return this.list().find((policy) => policy.name === name);
  }

  defaultPolicy(): Policy | undefined {
    return this.list().find((policy) => policy.default);
  }

  /** Inserts or replaces a policy; making it the default clears the previous default in the same transaction. */
  save(policy: Policy): void {
    const { id, name, default: isDefault, createdAt, updatedAt, ...rest } = policy;
    const body: PolicyBodyFields = rest;
    this.catalog.transaction(() => {
      if (isDefault) this.catalog.statement('UPDATE backup_policies SET is_default = 0 WHERE id != ?').run(id);
      this.catalog
        .statement(
          `INSERT INTO backup_policies (id, name, body, is_default, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET name = excluded.name, body = excluded.body, is_default = excluded.is_default,
             updated_at = excluded.updated_at`,
        )
        .run(id, name, JSON.stringify(body), isDefault ? 1 : 0, createdAt, updatedAt);
    });
    this.cache = null;
  }

  delete(id: string): void {
    this.catalog.statement('DELETE FROM backup_policies WHERE id = ?').run(id);
    this.cache = null;
  }

  sitesUsing(id: string): string[] {
    return [...this.snapshot().assignments].filter(([, policy]) => policy === id).map(([site]) => site);
  }

  assignment(site: string): string | undefined {
    return this.snapshot().assignments.get(site);
  }

  assign(site: string, policyId: string | null, at: string): void {
    if (policyId === null) this.catalog.statement('DELETE FROM site_policies WHERE site = ?').run(site);
    else
      this.catalog
        .statement(
          `INSERT INTO site_policies (site, policy_id, assigned_at) VALUES (?, ?, ?)
           ON CONFLICT(site) DO UPDATE SET policy_id = excluded.policy_id, assigned_at = excluded.assigned_at`,
        )
        .run(site, policyId, at);
    this.cache = null;
  }

  /** Every assignment and policy, read once and kept until a write: the scheduler reads them for every site each tick. */
  private snapshot(): { policies: Map<string, Policy>; assignments: Map<string, string> } {
    if (this.cache) return this.cache;
    const policies = new Map<string, Policy>();
    for (const row of this.catalog.statement('SELECT * FROM backup_policies').all() as Row[]) {
      policies.set(row.id, {
        ...(JSON.parse(row.body) as PolicyBodyFields),
        id: row.id,
        name: row.name,
        default: row.is_default === 1,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
      });
    }
    const assignments = new Map<string, string>();
    for (const row of this.catalog.statement('SELECT site, policy_id FROM site_policies').all() as Array<{
      site: string;
      policy_id: string;
    }>) {
      assignments.set(row.site, row.policy_id);
    }
    this.cache = { policies, assignments };
    return this.cache;
  }
}
