-- An example application schema that is not the helpdesk: a small shop.
-- docs/events.md maps it with docs/examples/shop-events.toml; a test (tests/it/ops.rs) loads
-- both and checks the events they produce.

CREATE TABLE IF NOT EXISTS customers (
    id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS orders (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    customer_id INT UNSIGNED NOT NULL,
    state ENUM('cart', 'placed', 'paid', 'shipped', 'cancelled') NOT NULL DEFAULT 'cart',
    total DECIMAL(10, 2) NOT NULL DEFAULT 0,
    currency CHAR(3) NOT NULL DEFAULT 'EUR',
    tracking_code VARCHAR(64) NULL,
    shipped_at DATETIME NULL,
    internal_notes TEXT NULL,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
