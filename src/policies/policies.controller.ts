import { ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { ErrorCode } from '../common/errors/error-code';
import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import { AssignPolicyBody, EffectivePolicyModel, PolicyBody, PolicyModel } from './policy.model';
import { PoliciesService } from './policies.service';

const POLICY_PARAM = { name: 'id', format: 'uuid', description: 'The policy id' };

@ApiTags('policies')
@Controller('v1/policies')
export class PoliciesController {
  constructor(private readonly policies: PoliciesService) {}

  /** Every backup policy, by name. */
  @Get()
  @RequireRole('monitor')
  @ApiStandardProblems(...SITE_PROBLEMS, ErrorCode.PolicyNotFound, ErrorCode.PolicyInUse)
  @ApiOkResponse({ type: [PolicyModel] })
  list(): PolicyModel[] {
    return this.policies.list();
  }

  /** Create a policy: provider, a schedule per level, retention, the restore-time budget. */
  @Post()
  @HttpCode(201)
  @RequireRole('admin')
  @ApiStandardProblems(...SITE_PROBLEMS, ErrorCode.PolicyNotFound, ErrorCode.PolicyInUse)
  @ApiCreatedResponse({ type: PolicyModel, description: 'Created; at the Location header' })
  create(
    @Body() body: PolicyBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): PolicyModel {
    const policy = this.policies.create(body, principal);
    res.setHeader('Location', `/v1/policies/${policy.id}`);
    return policy;
  }

  /** One backup policy. */
  @Get(':id')
  @RequireRole('monitor')
  @ApiStandardProblems(...SITE_PROBLEMS, ErrorCode.PolicyNotFound, ErrorCode.PolicyInUse)
  @ApiParam(POLICY_PARAM)
  @ApiOkResponse({ type: PolicyModel })
  get(@Param('id') id: string): PolicyModel {
    return this.policies.get(id);
  }

  /** Replace a policy; sites using it follow it from the next slot. */
  @Put(':id')
  @RequireRole('admin')
  @ApiStandardProblems(...SITE_PROBLEMS, ErrorCode.PolicyNotFound, ErrorCode.PolicyInUse)
  @ApiParam(POLICY_PARAM)
  @ApiOkResponse({ type: PolicyModel })
  replace(@Param('id') id: string, @Body() body: PolicyBody, @CurrentPrincipal() principal: Principal): PolicyModel {
    return this.policies.replace(id, body, principal);
  }

  /** Delete a policy no site is assigned to. */
  @Delete(':id')
  @HttpCode(204)
  @RequireRole('admin')
  @ApiStandardProblems(...SITE_PROBLEMS, ErrorCode.PolicyNotFound, ErrorCode.PolicyInUse)
  @ApiParam(POLICY_PARAM)
  @ApiNoContentResponse({ description: 'Deleted' })
  delete(@Param('id') id: string): void {
    this.policies.delete(id);
  }
}

@ApiTags('policies')
@Controller('v1/sites/:site/policy')
export class SitePolicyController {
  constructor(private readonly policies: PoliciesService) {}

  /** The policy that applies to the site, and where it comes from (`site`, `default` or `none`). */
  @Get()
  @RequireRole('monitor')
  @ApiStandardProblems(...SITE_PROBLEMS, ErrorCode.PolicyNotFound, ErrorCode.PolicyInUse)
  @ApiParam(SITE_PARAM)
  @ApiOkResponse({ type: EffectivePolicyModel })
  get(@Param('site', SiteRefPipe) site: SiteRef): Promise<EffectivePolicyModel> {
    return this.policies.effectiveFor(site);
  }

  /** Assign a policy to the site (`policy: null` falls back to the default policy). */
  @Put()
  @RequireRole('admin')
  @ApiStandardProblems(...SITE_PROBLEMS, ErrorCode.PolicyNotFound, ErrorCode.PolicyInUse)
  @ApiParam(SITE_PARAM)
  @ApiOkResponse({ type: EffectivePolicyModel })
  assign(@Param('site', SiteRefPipe) site: SiteRef, @Body() body: AssignPolicyBody): Promise<EffectivePolicyModel> {
    return this.policies.assign(site, body.policy ?? null);
  }
}
