/** Ordered, append-only schema changes. Never edit a shipped migration: add the next one. */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    id: 1,
    name: 'scopes',
    sql: `
      CREATE TABLE scope_values (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );`,
  },
];
