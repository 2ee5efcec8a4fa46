import { Injectable } from '@nestjs/common';

export type AttemptOutcome = { ok: true; statusCode: number } | { ok: false; statusCode: number | null; error: string };

/** How much of a failed answer's body is kept as its error. */
const ERROR_BODY_BYTES = 200;

/** Sends one delivery attempt over HTTP: the only place webhooks touch the network. */
@Injectable()
export class WebhookTransport {
  /** POSTs `body`; any 2xx is a success. Redirects are not followed (the target was validated, its redirect was not). */
  async post(
    url: string,
    headers: Record<string, string>,
    body: string,
    options: { timeoutMs: number; signal: AbortSignal },
  ): Promise<AttemptOutcome> {
    const timeout = AbortSignal.timeout(options.timeoutMs);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.any([options.signal, timeout]),
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => undefined);
        return { ok: true, statusCode: res.status };
      }
      const snippet = await readSnippet(res);
      const redirect =
        res.status >= 300 && res.status < 400
          ? ` (redirect to ${res.headers.get('location') ?? '?'} not followed)`
          : snippet
            ? `: ${snippet}`
            : '';
      return { ok: false, statusCode: res.status, error: `HTTP ${res.status}${redirect}` };
    } catch (error) {
      if (timeout.aborted) {
        return { ok: false, statusCode: null, error: `no answer within ${options.timeoutMs / 1000} s` };
      }
      return { ok: false, statusCode: null, error: describeError(error) };
    }
  }
}

/** The start of a failed answer's body, on one line. */
async function readSnippet(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ERROR_BODY_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // what arrived is enough
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString('utf8');
  return text.replace(/\s+/g, ' ').trim();
}

/** `fetch failed` says nothing; its cause names the socket error (ECONNREFUSED, ENOTFOUND, a TLS failure). */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    if (cause.message) return cause.message;
    if (typeof code === 'string') return code;
  }
  return error.message;
}
