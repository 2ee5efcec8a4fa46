import { Type as ClassType } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { AppError } from '../errors/app-error';
import { ErrorCode } from '../errors/error-code';

export const MAX_PAGE_LIMIT = 500;
/** The page size when a list request names none (jobs and webhooks use a smaller one, see `pageQuery`). */
export const DEFAULT_PAGE_LIMIT = 100;

/**
 * `limit` and `cursor`, the same on every list route, with the list's real default page size in the spec (clients
 * generated from it must send `cursor` to get page 2, and must know what they get without `limit`).
 */
export function pageQuery(defaultLimit: number): ClassType<{ limit?: number; cursor?: string }> {
  class PageQueryOf {
    /** How many items to return. */
    @IsOptional()
    @Type(() => Number)
    @IsInt()
    @Min(1)
    @Max(MAX_PAGE_LIMIT)
    @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_PAGE_LIMIT, default: defaultLimit })
    limit?: number;

    /** The `nextCursor` of the previous page; absent for the first page. */
    @IsOptional()
    @Matches(/^[A-Za-z0-9_-]{1,200}$/, { message: 'cursor must be a nextCursor value from a previous page' })
    @ApiPropertyOptional({ type: String, pattern: '^[A-Za-z0-9_-]{1,200}$' })
    cursor?: string;
  }
  Object.defineProperty(PageQueryOf, 'name', { value: `PageQuery${defaultLimit}` });
  return PageQueryOf;
}

export class PageQuery extends pageQuery(DEFAULT_PAGE_LIMIT) {}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

export function decodeCursor<T>(cursor: string, check: (value: unknown) => value is T): T {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (check(value)) return value;
  } catch {
    // fall through
  }
  throw new AppError(ErrorCode.ValidationFailed, 'The cursor is not one this API issued.', {
    errors: [{ field: 'query.cursor', messages: ['cursor must be a nextCursor value from a previous page'] }],
  });
}

/** Builds the documented page class for an item model (Swagger cannot describe generics). */
export function PageModel<T>(item: ClassType<T>): ClassType<Page<T>> {
  class PageOf {
    @ApiProperty({ type: [item] })
    items!: T[];

    /** Pass as `cursor` to get the next page; null on the last page. */
    @ApiProperty({ type: String, nullable: true })
    nextCursor!: string | null;
  }
  Object.defineProperty(PageOf, 'name', { value: `${item.name.replace(/Model$/, '')}Page` });
  return PageOf;
}
