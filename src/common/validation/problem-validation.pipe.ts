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
