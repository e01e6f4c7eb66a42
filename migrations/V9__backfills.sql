-- Backfills: a webhook's copy of a table's current rows (src/backfill.rs).
-- One row per backfill: what was asked, where it stands (the key of the last
-- row read, so a restart resumes there), what it has sent.
CREATE TABLE IF NOT EXISTS rowhook_backfills (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    webhook_id BIGINT UNSIGNED NOT NULL,
    event_type VARCHAR(100) NOT NULL,
    filter TEXT NULL,
    row_limit BIGINT UNSIGNED NULL,
    state VARCHAR(16) NOT NULL DEFAULT 'queued',
    cursor_key TEXT NULL,
    rows_read BIGINT UNSIGNED NOT NULL DEFAULT 0,
    rows_sent BIGINT UNSIGNED NOT NULL DEFAULT 0,
    rows_estimate BIGINT UNSIGNED NULL,
    error TEXT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    started_at TIMESTAMP NULL,
    finished_at TIMESTAMP NULL,
    FOREIGN KEY (webhook_id) REFERENCES webhooks(id) ON DELETE CASCADE,
    INDEX idx_state (state, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A backfill's watermarks (DBLog): written before and after each chunk is
-- read, so that the chunk's boundaries appear in the binlog among the
-- application's changes. One row per backfill, rewritten each time.
CREATE TABLE IF NOT EXISTS rowhook_watermarks (
    backfill_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    chunk BIGINT UNSIGNED NOT NULL,
    mark VARCHAR(8) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
