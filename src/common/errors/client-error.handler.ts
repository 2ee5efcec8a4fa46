import type { Server } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERROR_TITLE, ErrorCode } from './error-code';
import { PROBLEM_CONTENT_TYPE, problemOf } from './problem.filter';

/**
 * Requests Node's HTTP parser rejects (a broken request line, headers past the size limit, a request that never
 * finishes) never reach Express; without this Node answers them with a bare `400 Bad Request` and no body.
 * Here they get the same problem+json as every other error.
 */
export function answerClientErrorsAsProblems(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(problemResponse(codeFor(error.code)));
  });
}

function codeFor(nodeCode: string | undefined): ErrorCode {
  switch (nodeCode) {
    case 'HPE_HEADER_OVERFLOW':
      return ErrorCode.HeadersTooLarge;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ErrorCode.RequestTimeout;
    default:
      return ErrorCode.MalformedRequest;
  }
}

function problemResponse(code: ErrorCode): string {
  const problem = problemOf(code, `${ERROR_TITLE[code]}; the connection is closed.`);
  const body = JSON.stringify(problem);
  return [
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}`,
    `Content-Type: ${PROBLEM_CONTENT_TYPE}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
