-- Secret rotation: for an overlap after POST /api/webhooks/{id}/rotate-secret,
-- deliveries are signed with the previous secret too.
ALTER TABLE webhooks
    ADD COLUMN previous_secret VARCHAR(255) NULL AFTER secret,
    ADD COLUMN previous_secret_expires_at TIMESTAMP NULL AFTER previous_secret;
