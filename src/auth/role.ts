export const ROLES = ['monitor', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { monitor: 1, operator: 2, admin: 3 };

export function roleAllows(held: Role, required: Role): boolean {
  return RANK[held] >= RANK[required];
}

export interface Principal {
  name: string;
  role: Role;
}
