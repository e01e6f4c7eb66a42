-- Every failed delivery attempt, for a delivery's history in the console: a delivery's row keeps
-- only its last attempt. A successful attempt is not written here (the row is its record), so a
-- delivery that succeeds at once costs nothing more than before. Deleted with its delivery.
CREATE TABLE IF NOT EXISTS webhook_delivery_attempts (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    delivery_id BIGINT UNSIGNED NOT NULL,
    attempt INT NOT NULL,
    response_status INT NULL,
    response_body TEXT NULL,
    error TEXT NULL,
    duration_ms INT UNSIGNED NULL,
    attempted_at DATETIME(3) NOT NULL,
    FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    INDEX idx_delivery (delivery_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
