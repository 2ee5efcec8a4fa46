import { PageModel } from '../common/pagination/page';
import { JobModel } from './job.model';

export class JobPageModel extends PageModel(JobModel) {}
