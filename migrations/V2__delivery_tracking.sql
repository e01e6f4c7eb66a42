-- What asynchronous delivery needs beyond the seed: added, never renamed.
ALTER TABLE webhooks
    ADD COLUMN failing_since TIMESTAMP NULL AFTER failed_attempts;

ALTER TABLE webhook_deliveries
    ADD COLUMN event_id VARCHAR(191) NULL AFTER webhook_id,
    ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'pending' AFTER payload,
    ADD COLUMN next_attempt_at DATETIME(3) NULL AFTER attempts,
    ADD COLUMN last_attempt_at DATETIME(3) NULL AFTER next_attempt_at,
    ADD COLUMN last_error TEXT NULL AFTER response_body,
    ADD COLUMN duration_ms INT UNSIGNED NULL AFTER last_error,
    ADD UNIQUE INDEX uq_webhook_event (webhook_id, event_id),
    ADD INDEX idx_queue (webhook_id, status, next_attempt_at);

-- Deliveries the PHP app made synchronously are history, not work.
UPDATE webhook_deliveries
    SET status = IF(delivered_at IS NULL, 'failed', 'delivered')
    WHERE event_id IS NULL;

-- Where the binlog reader resumes; written in the same transaction as the
-- deliveries of the binlog transactions it covers.
CREATE TABLE rowhook_checkpoints (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    binlog_file VARCHAR(255) NOT NULL,
    binlog_pos BIGINT UNSIGNED NOT NULL,
    gtid VARCHAR(255) NULL,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
