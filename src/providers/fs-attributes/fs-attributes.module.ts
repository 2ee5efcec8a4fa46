import { Module } from '@nestjs/common';
import { FsAttributesService } from './fs-attributes.service';
import { ManifestFence } from './manifest-fence';

/** Capture and re-apply of xattrs and ACLs, for engines that drop them. ProcessRunner comes from the global CommonModule. */
@Module({ providers: [FsAttributesService, ManifestFence], exports: [FsAttributesService, ManifestFence] })
export class FsAttributesModule {}
