export const REDACTED = '[REDACTED]';

/** Replaces the password of every URL, and every occurrence of each secret (at least 4 characters, to avoid shredding ordinary text) in `text`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let result = redactUrlCredentials(text);
  for (const secret of secrets) {
    if (secret.length >= 4) result = result.split(secret).join(REDACTED);
  }
  return result;
}

/** The user and password in a URL's authority (`scheme://user:pass@host/...`), when it has any. */
export function urlCredentials(url: string): { user: string; password: string | undefined } | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/@?#]*)@/i.exec(url);
  if (!m) return undefined;
  const colon = m[1].indexOf(':');
  return colon < 0
    ? { user: m[1], password: undefined }
    : { user: m[1].slice(0, colon), password: m[1].slice(colon + 1) };
}

/** Every URL in `text` with the password of its authority (`user:pass@`) replaced: how URLs are ever printed. */
export function redactUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^/@?#\s:]*):([^/@?#\s]*)@/gi, `$1$2:${REDACTED}@`);
}
