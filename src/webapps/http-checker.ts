import { Injectable } from '@nestjs/common';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** What a page looked like: enough to tell a working app from a broken one. */
export interface PageCheck {
  url: string;
  status: number | null;
  title: string | null;
  bytes: number;
  /** Fatal-error markers found in the body. */
  markers: string[];
  /** Set when the request itself failed (refused, timed out). */
  error: string | null;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const TIMEOUT_MS = 20_000;

/** PHP's and the apps' own "this is broken" pages. */
export const FATAL_MARKERS: ReadonlyArray<{ name: string; pattern: RegExp }> = [
  { name: 'php-fatal-error', pattern: /Fatal error/i },
  { name: 'php-parse-error', pattern: /Parse error:/i },
  { name: 'wordpress-critical-error', pattern: /There has been a critical error on (this|your) website/i },
  { name: 'laravel-error', pattern: /Whoops, looks like something went wrong/i },
  { name: 'nextcloud-internal-error', pattern: /Internal Server Error[\s\S]{0,400}(Nextcloud|remote address)/i },
];

export function titleOf(body: string): string | null {
  const match = /<title[^>]*>([\s\S]{0,1024}?)<\/title>/i.exec(body);
  const title = match?.[1].replace(/\s+/g, ' ').trim();
  return title ? title : null;
}

/**
 * Fetches an app's page from this server (`WEBAPP_CHECK_ORIGIN`) with the site's domain as `Host`, without following
 * redirects, reading at most MAX_BODY_BYTES within TIMEOUT_MS.
 */
@Injectable()
export class WebappHttpChecker {
  async check(origin: string, host: string | null, path: string): Promise<PageCheck> {
    const url = new URL(path, origin);
    const started: PageCheck = { url: url.href, status: null, title: null, bytes: 0, markers: [], error: null };
    return new Promise<PageCheck>((resolve) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        url,
        {
          method: 'GET',
          headers: {
            ...(host ? { host } : {}),
            'user-agent': 'apiscp-backup-api update-assurance',
            accept: 'text/html,*/*',
          },
          timeout: TIMEOUT_MS,
          // A site's certificate names its domain, not 127.0.0.1.
          ...(url.protocol === 'https:' ? { servername: host ?? undefined, rejectUnauthorized: false } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes <= MAX_BODY_BYTES) chunks.push(chunk);
            else res.destroy();
          });
          const finish = () => {
            const body = Buffer.concat(chunks).toString('utf8');
            resolve({
              ...started,
              status: res.statusCode ?? null,
              title: titleOf(body),
              bytes,
              markers: FATAL_MARKERS.filter((marker) => marker.pattern.test(body)).map((marker) => marker.name),
            });
          };
          res.on('end', finish);
          res.on('close', finish);
          res.on('error', finish);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
      req.on('error', (error) => resolve({ ...started, error: error.message }));
      req.end();
    });
  }
}

export interface Verdict {
  broken: boolean;
  reasons: string[];
}

/** Broken: no answer, a 5xx, a fatal-error marker, an error status where there was none, a lost title, a page shrunk past `shrink`. */
export function judge(baseline: PageCheck, now: PageCheck, shrink: number): Verdict {
  const reasons: string[] = [];
  if (now.error) reasons.push(`no answer: ${now.error}`);
  if (now.status !== null && now.status >= 500) reasons.push(`status ${now.status}`);
  else if (now.status !== null && now.status >= 400 && (baseline.status ?? 0) < 400) {
    reasons.push(`status ${now.status} (was ${baseline.status})`);
  }
  const newMarkers = now.markers.filter((marker) => !baseline.markers.includes(marker));
  if (newMarkers.length) reasons.push(`fatal-error marker: ${newMarkers.join(', ')}`);
  if (baseline.title && !now.title) reasons.push(`title lost (was "${baseline.title}")`);
  if (baseline.bytes > 0 && now.bytes < baseline.bytes * (1 - shrink)) {
    reasons.push(`page shrunk from ${baseline.bytes} to ${now.bytes} bytes`);
  }
  return { broken: reasons.length > 0, reasons };
}
