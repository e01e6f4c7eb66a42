-- Claiming a webhook's due deliveries oldest first: with this index the
-- server walks pending rows in id order and stops after a wave's worth,
-- instead of sorting every due row of a large backlog for each wave.
ALTER TABLE webhook_deliveries
    ADD INDEX idx_pending_order (webhook_id, status, id);
