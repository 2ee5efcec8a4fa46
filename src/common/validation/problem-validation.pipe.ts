import { ArgumentMetadata, Injectable, ValidationError, ValidationPipe } from '@nestjs/common';
import { AppError, type FieldError } from '../errors/app-error';
import { ErrorCode } from '../errors/error-code';

/** Nest's ValidationPipe, answering with a problem that names each bad field as `body.x`, `query.y` or `param.z`. */
@Injectable()
export class ProblemValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) =>
        new AppError(ErrorCode.ValidationFailed, 'One or more fields are invalid.', { errors: flatten(errors) }),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if ((metadata.type === 'body' || metadata.type === 'query') && this.toValidate(metadata)) {
      const errors = droppedKeys(value).map((field) => ({
        field: `${metadata.type}.${field}`,
        messages: [`property ${field.split('.').pop()} should not exist`],
      }));
      if (errors.length > 0) throw new AppError(ErrorCode.ValidationFailed, describe(errors), { errors });
    }
    try {
      return await super.transform(value, metadata);
    } catch (error) {
      if (error instanceof AppError && error.extras.errors) {
        const where = metadata.type === 'custom' ? 'value' : metadata.type;
        const errors = error.extras.errors.map((entry) => ({ ...entry, field: `${where}.${entry.field}` }));
        throw new AppError(error.code, describe(errors), { ...error.extras, errors });
      }
      throw error;
    }
  }
}

/**
 * Keys that slip past the whitelist: Nest's pipe deletes `__proto__`, `constructor` and `prototype` and
 * class-transformer skips the first two (so `{"prototype": {}}` passed as an empty, valid body and POST /v1/exports
 * exported every site), and class-validator looks properties up in a plain object, so `hasOwnProperty` or
 * `isPrototypeOf` count as declared. Refuse them like any other unknown property, at any depth.
 */
const PROTOTYPE_KEYS = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);

function droppedKeys(value: unknown, path = '', depth = 0): string[] {
  if (value === null || typeof value !== 'object' || depth > 32) return [];
  return Object.keys(value).flatMap((key) => {
    const field = path ? `${path}.${key}` : key;
    return PROTOTYPE_KEYS.has(key) ? [field] : droppedKeys((value as Record<string, unknown>)[key], field, depth + 1);
  });
}

function describe(errors: FieldError[]): string {
  return errors.map((entry) => `${entry.field}: ${entry.messages.join('; ')}`).join(' | ');
}

function flatten(errors: ValidationError[], parent?: string): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = error.constraints ? [{ field, messages: Object.values(error.constraints) }] : [];
    return [...own, ...flatten(error.children ?? [], field)];
  });
}
