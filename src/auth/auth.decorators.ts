import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ProblemModel } from '../common/errors/problem.model';
import type { Principal, Role } from './role';

export const REQUIRED_ROLE = 'auth:required-role';
export const PUBLIC_ROUTE = 'auth:public';

/** The least role a route needs. Every non-public route must carry one: the guard refuses routes without. */
export function RequireRole(role: Role) {
  return applyDecorators(
    SetMetadata(REQUIRED_ROLE, role),
    ApiBearerAuth('bearer'),
    ApiUnauthorizedResponse({ description: 'No or invalid bearer token', type: ProblemModel }),
    ApiForbiddenResponse({ description: `Needs role ${role} or higher`, type: ProblemModel }),
  );
}

/** A route that needs no token (health, metrics). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** The caller as the guard authenticated it. */
export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Principal =>
    context.switchToHttp().getRequest<{ principal: Principal }>().principal,
);
