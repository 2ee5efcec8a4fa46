import { ApiPropertyOptional } from '@nestjs/swagger';

export class FieldErrorModel {
  /** Dotted path of the offending field (`body.level`, `query.limit`). */
  field!: string;
  messages!: string[];
}

/** An RFC 9457 problem document; every error the API returns has this shape. */
export class ProblemModel {
  /** A URI naming the kind of problem: `urn:apiscp-backup-api:problem:<code>`. */
  type!: string;
  title!: string;
  status!: number;
  detail!: string;
  /** The machine-readable error code. */
  code!: string;
  /** The request path. */
  instance!: string;
  /** Present on validation errors: one entry per bad field. */
  @ApiPropertyOptional({ type: [FieldErrorModel] })
  errors?: FieldErrorModel[];
  /** Present on internal errors; the same id is in the service log. */
  errorId?: string;
}
