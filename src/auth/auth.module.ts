import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthGuard } from './auth.guard';
import { TokenStore } from './token-store';

@Global()
@Module({ providers: [TokenStore, { provide: APP_GUARD, useClass: AuthGuard }], exports: [TokenStore] })
export class AuthModule {}
