import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';

export const SITE_ID = /^site([1-9][0-9]{0,8})$/;
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export type SiteRef = { kind: 'id'; id: string } | { kind: 'domain'; domain: string };

export function isDomainName(value: string): boolean {
  if (value.length > 253) return false;
  const labels = value.split('.');
  return labels.length >= 2 && labels.every((label) => DOMAIN_LABEL.test(label)) && !/^[0-9]+$/.test(labels.at(-1)!);
}

/**
 * `siteN` or a domain name, lower-cased; anything else (traversal, slashes, NUL, over-long) is refused here,
 * before any filesystem access.
 */
export function parseSiteRef(raw: unknown): SiteRef {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 253) {
    throw new AppError(
      ErrorCode.InvalidSiteReference,
      'A site is `siteN` or one of its domain names (at most 253 characters).',
    );
  }
  const value = raw.toLowerCase();
  if (SITE_ID.test(value)) return { kind: 'id', id: value };
  if (isDomainName(value)) return { kind: 'domain', domain: value };
  throw new AppError(
    ErrorCode.InvalidSiteReference,
    `${JSON.stringify(raw.slice(0, 80))} is neither \`siteN\` nor a valid domain name.`,
  );
}
