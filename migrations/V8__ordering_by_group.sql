-- Ordering by group: each delivery carries its event's group key (the rule's
-- `group_by` values; NULL: a group of its own), and a webhook may choose its
-- ordering (`group`, `webhook`, `none`; NULL: `[delivery] ordering`).
-- idx_group finds a group's earlier pending deliveries (the history's
-- "waiting for"); it holds no `status`, so recording an attempt, which
-- changes only `status` and its companions, never rewrites it.
ALTER TABLE webhook_deliveries
    ADD COLUMN group_key VARCHAR(191) NULL AFTER event_type,
    ADD INDEX idx_group (webhook_id, group_key, id);

ALTER TABLE webhooks
    ADD COLUMN ordering VARCHAR(16) NULL AFTER failing_since;
