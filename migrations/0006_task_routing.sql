-- Task routing: a worker declares the tasks it can run and claims only their jobs. A claim for
-- declared tasks walks one ordered range of this index per task (like jobs_queue_claim_idx per
-- queue), so its cost does not depend on the backlog of tasks no worker knows: on a 1M backlog
-- whose unknown task sorts first, a task filter on jobs_claim_idx would scan past all of it
-- (docs/architecture.md §5, measured by packages/engine/scripts/explain-claim.mjs).
create index jobs_task_claim_idx on jobs (task, priority, run_at, id) where state in ('queued', 'retry_waiting');
