import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { ProblemModel } from '../common/errors/problem.model';
import { ScopeModel, SetScopeBody } from './scope.model';
import { ScopesService } from './scopes.service';

const SCOPE_PARAM = { name: 'name', example: 'backups.automatic-database-exports' };

@ApiTags('scopes')
@Controller('v1/scopes')
export class ScopesController {
  constructor(private readonly scopes: ScopesService) {}

  /** Read a panel scope. */
  @Get(':name')
  @RequireRole('monitor')
  @ApiParam(SCOPE_PARAM)
  @ApiOkResponse({ type: ScopeModel })
  @ApiNotFoundResponse({ type: ProblemModel, description: 'Unknown scope' })
  @ApiBadGatewayResponse({ type: ProblemModel, description: 'cpcmd failed' })
  get(@Param('name') name: string): Promise<ScopeModel> {
    return this.scopes.get(name);
  }

  /** Change a panel scope (admin). */
  @Put(':name')
  @RequireRole('admin')
  @ApiParam(SCOPE_PARAM)
  @ApiOkResponse({ type: ScopeModel })
  @ApiBadRequestResponse({ type: ProblemModel, description: 'The value is not a boolean' })
  @ApiNotFoundResponse({ type: ProblemModel, description: 'Unknown scope' })
  @ApiBadGatewayResponse({ type: ProblemModel, description: 'cpcmd failed' })
  set(
    @Param('name') name: string,
    @Body() body: SetScopeBody,
    @CurrentPrincipal() principal: Principal,
  ): Promise<ScopeModel> {
    return this.scopes.set(name, body.value, principal.name);
  }
}
