import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ErrorCode } from './error-code';

export class FieldErrorModel {
  /** Dotted path of the offending field (`body.level`, `query.limit`, `header.idempotency-key`). */
  field!: string;
  messages!: string[];
}

/** An RFC 9457 problem document (`application/problem+json`); every error the API returns has this shape. */
export class ProblemModel {
  /** A URI naming the kind of problem: `urn:apiscp-backup-api:problem:<code>`. */
  @ApiProperty({ example: 'urn:apiscp-backup-api:problem:site-not-found' })
  type!: string;
  @ApiProperty({ example: 'No such site' })
  title!: string;
  /** The HTTP status, repeated. */
  @ApiProperty({ type: 'integer', minimum: 400, maximum: 599, example: 404 })
  status!: number;
  @ApiProperty({ example: 'No site is named site12.' })
  detail!: string;
  /** The machine-readable error code: one HTTP status per code. */
  @ApiProperty({ enum: ErrorCode, enumName: 'ErrorCode', example: ErrorCode.SiteNotFound })
  code!: ErrorCode;
  /** The request path; absent only when the HTTP request itself could not be read. */
  @ApiPropertyOptional({ example: '/v1/sites/site12' })
  instance?: string;
  /** Present on validation errors: one entry per bad field. */
  @ApiPropertyOptional({ type: [FieldErrorModel] })
  errors?: FieldErrorModel[];
  /** Present on internal errors; the same id is in the service log. */
  @ApiPropertyOptional({ format: 'uuid' })
  errorId?: string;
  /** `site-not-found` of an export request: the names that match no site. */
  @ApiPropertyOptional({ type: [String] })
  missing?: string[];
  /** `not-ready`: each dependency's state. */
  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  checks?: Record<string, unknown>;
}
