import { createHmac, randomBytes } from 'node:crypto';

/** The version tag of the signature scheme; a new scheme gets a new tag so receivers can accept both for a while. */
export const SIGNATURE_VERSION = 'v1';

/** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`: the value of X-Webhook-Signature. */
export function signatureHeader(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  return `${SIGNATURE_VERSION}=${mac}`;
}

/** A new signing secret: 32 random bytes, printable, prefixed so it is recognisable in a secret store. */
export function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}
