import { Module } from '@nestjs/common';
import { FsAttributesService } from './fs-attributes.service';

/** Capture and re-apply of xattrs and ACLs, for engines that drop them. ProcessRunner comes from the global CommonModule. */
@Module({ providers: [FsAttributesService], exports: [FsAttributesService] })
export class FsAttributesModule {}
