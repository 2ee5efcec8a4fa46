import { applyDecorators, UseInterceptors } from '@nestjs/common';
import { ApiHeader, ApiUnprocessableEntityResponse } from '@nestjs/swagger';
import { ProblemModel } from '../common/errors/problem.model';
import { IdempotencyInterceptor } from './idempotency.interceptor';

/** Marks a POST that starts work as safe to retry with an `Idempotency-Key`. */
export function Idempotent() {
  return applyDecorators(
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description: 'Retry-safe key: the same key and request within 24 h return the original job instead of a new one.',
    }),
    ApiUnprocessableEntityResponse({ type: ProblemModel, description: 'The key was used with a different request' }),
  );
}
