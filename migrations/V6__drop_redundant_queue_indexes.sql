-- Every delivery row is inserted once and updated at least once; each secondary index that
-- holds `status` is rewritten on every update. Two indexes no query uses any more:
--   idx_queue (webhook_id, status, next_attempt_at): the queue is read through
--     idx_pending_order (webhook_id, status, id) since V4, in commit order;
--   idx_webhook (webhook_id): a prefix of uq_webhook_event, which also serves the foreign key.
-- (`/*M! IF EXISTS */`: MariaDB also accepts a table the PHP version created without them.)
ALTER TABLE webhook_deliveries
    DROP INDEX /*M! IF EXISTS */ idx_queue,
    DROP INDEX /*M! IF EXISTS */ idx_webhook;
