import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { PUBLIC_ROUTE, REQUIRED_ROLE } from './auth.decorators';
import { roleAllows, type Principal, type Role } from './role';
import { TokenStore } from './token-store';

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

/** Global guard: a bearer token for every route but the public ones, and at least the role the route declares. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokenStore,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    // A route that forgot its decorator is admin-only rather than open.
    const required = this.reflector.getAllAndOverride<Role>(REQUIRED_ROLE, targets) ?? 'admin';

    const request = context.switchToHttp().getRequest<Request & { principal?: Principal }>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match) {
      throw new AppError(ErrorCode.Unauthenticated, 'Send `Authorization: Bearer <token>`.', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    const principal = this.tokens.authenticate(match[1]);
    if (!principal) {
      throw new AppError(ErrorCode.Unauthenticated, 'The bearer token is not valid.', {
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      });
    }
    request.principal = principal;
    if (!roleAllows(principal.role, required)) {
      throw new AppError(
        ErrorCode.Forbidden,
        `This needs role ${required}; token ${principal.name} has role ${principal.role}.`,
      );
    }
    return true;
  }
}
