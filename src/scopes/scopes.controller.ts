import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { ErrorCode } from '../common/errors/error-code';
import { ApiStandardProblems } from '../openapi/api-answers';
import { KNOWN_SCOPES } from './known-scopes';
import { ScopeModel, SetScopeBody } from './scope.model';
import { ScopesService } from './scopes.service';

const SCOPE_PARAM = {
  name: 'name',
  description: 'A scope this service exposes',
  schema: { type: 'string' as const, enum: Object.keys(KNOWN_SCOPES) },
  example: 'backups.automatic-database-exports',
};

@ApiTags('scopes')
@Controller('v1/scopes')
export class ScopesController {
  constructor(private readonly scopes: ScopesService) {}

  /** Read a panel scope. */
  @Get(':name')
  @RequireRole('monitor')
  @ApiParam(SCOPE_PARAM)
  @ApiOkResponse({ type: ScopeModel })
  @ApiStandardProblems(ErrorCode.ScopeNotFound, ErrorCode.ScopeStoreFailed)
  get(@Param('name') name: string): Promise<ScopeModel> {
    return this.scopes.get(name);
  }

  /** Change a panel scope (admin). */
  @Put(':name')
  @RequireRole('admin')
  @ApiParam(SCOPE_PARAM)
  @ApiOkResponse({ type: ScopeModel })
  @ApiStandardProblems(ErrorCode.ScopeNotFound, ErrorCode.ScopeStoreFailed)
  set(
    @Param('name') name: string,
    @Body() body: SetScopeBody,
    @CurrentPrincipal() principal: Principal,
  ): Promise<ScopeModel> {
    return this.scopes.set(name, body.value, principal.name);
  }
}
