import { Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AppConfig } from '../config/app-config';
import { ConfigError } from '../config/load-config';
import { ROLES, type Principal, type Role } from './role';

interface StoredToken {
  name: string;
  role: Role;
  digest: Buffer;
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** API tokens from API_TOKENS_FILE, kept only as SHA-256 digests. */
@Injectable()
export class TokenStore {
  private readonly tokens: StoredToken[];

  constructor(config: AppConfig) {
    this.tokens = TokenStore.parse(config.tokensFile);
  }

  static parse(file: string): StoredToken[] {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError([`API_TOKENS_FILE: cannot read ${file} as JSON (${(error as Error).message})`]);
    }
    if (!Array.isArray(raw)) throw new ConfigError([`API_TOKENS_FILE: ${file} must hold a JSON array`]);
    const problems: string[] = [];
    const tokens: StoredToken[] = [];
    raw.forEach((entry: unknown, index) => {
      const { name, role, sha256 } = (entry ?? {}) as Record<string, unknown>;
      if (typeof name !== 'string' || name.length === 0) problems.push(`API_TOKENS_FILE: entry ${index} has no name`);
      if (!ROLES.includes(role as Role))
        problems.push(`API_TOKENS_FILE: entry ${index} role must be one of ${ROLES.join(', ')}`);
      if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(sha256)) {
        problems.push(
          `API_TOKENS_FILE: entry ${index} sha256 must be 64 hex digits (the token's SHA-256, never the token)`,
        );
      }
      if (problems.length === 0)
        tokens.push({ name: name as string, role: role as Role, digest: Buffer.from(sha256 as string, 'hex') });
    });
    if (problems.length > 0) throw new ConfigError(problems);
    return tokens;
  }

  /** Compares the presented token's digest with every stored digest in constant time, whichever matches. */
  authenticate(token: string): Principal | undefined {
    const presented = createHash('sha256').update(token, 'utf8').digest();
    let match: StoredToken | undefined;
    for (const stored of this.tokens) {
      if (timingSafeEqual(presented, stored.digest) && match === undefined) match = stored;
    }
    return match ? { name: match.name, role: match.role } : undefined;
  }
}
