/*
 * Jobs by kind (task.h). The kind travels with the job in the pool's
 * queue, which knows nothing of what it means.
 */
#include "task.h"

#include "contactsheet.h"
#include "job.h"

void ib_task_run(void *ctx, ib_worker_t *self, const void *job, size_t len, void *result)
{
    if (ib_worker_job_kind(self) == IB_TASK_SHEET && len == sizeof(ib_sheet_job_t))
        ib_sheet_run(ctx, self, job, result);
    else
        ib_job_run(ctx, self, job, len, result);
}
