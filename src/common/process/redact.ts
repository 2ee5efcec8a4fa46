export const REDACTED = '[REDACTED]';

/** Replaces every occurrence of each secret (at least 4 characters, to avoid shredding ordinary text) in `text`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length >= 4) result = result.split(secret).join(REDACTED);
  }
  return result;
}
