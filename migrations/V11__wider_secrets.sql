-- Room for secrets sealed with [admin] secrets_key (enc:v1:<key id>:<base64>): the longest secret
-- the API takes (255 bytes) is 396 characters sealed. Wider only; a plaintext secret stays as it is.
ALTER TABLE webhooks
    MODIFY COLUMN secret VARCHAR(512) NOT NULL,
    MODIFY COLUMN previous_secret VARCHAR(512) NULL;
