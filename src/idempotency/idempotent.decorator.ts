import { applyDecorators, UseInterceptors } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { ErrorCode } from '../common/errors/error-code';
import { ApiProblems } from '../openapi/api-answers';
import { IdempotencyInterceptor } from './idempotency.interceptor';

/** Marks a POST that starts work as safe to retry with an `Idempotency-Key`. */
export function Idempotent() {
  return applyDecorators(
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description: 'Retry-safe key: the same key and request within 24 h return the original job instead of a new one.',
      schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
    }),
    ApiProblems(ErrorCode.IdempotencyKeyReused, ErrorCode.ValidationFailed),
  );
}
