<?php
// Verify rowhook webhooks in PHP (no dependencies).
//
// Use rowhook_verify($secret, $headers, $body) in your own endpoint, or try it
// with PHP's built-in server:  WEBHOOK_SECRET=whsec_... php -S 127.0.0.1:8000 verify.php

const ROWHOOK_TOLERANCE = 300; // seconds: refuse replays of old deliveries

// whsec_<base64> secrets are base64 keys; any other secret (such as the 64 hex
// characters the PHP app generated) is used as is.
function rowhook_signing_key(string $secret): string
{
    return str_starts_with($secret, 'whsec_') ? base64_decode(substr($secret, 6), true) : $secret;
}

// Throws unless the request was signed with $secret. $headers: lowercase names;
// $body: the raw request body (file_get_contents('php://input')).
function rowhook_verify(string $secret, array $headers, string $body, ?int $now = null): void
{
    $key = rowhook_signing_key($secret);
    $id = $headers['webhook-id'] ?? '';
    $timestamp = $headers['webhook-timestamp'] ?? '';
    if ($id === '' || !ctype_digit($timestamp)) {
        throw new RuntimeException('missing webhook-id or webhook-timestamp');
    }
    if (abs(($now ?? time()) - (int) $timestamp) > ROWHOOK_TOLERANCE) {
        throw new RuntimeException('webhook-timestamp is more than 5 minutes away from now');
    }
    // Standard Webhooks: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"; several
    // space-separated "v1,<sig>" entries while a secret is being rotated.
    $expected = base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", $key, true));
    $matched = false;
    foreach (explode(' ', $headers['webhook-signature'] ?? '') as $entry) {
        if (str_starts_with($entry, 'v1,') && hash_equals($expected, substr($entry, 3))) {
            $matched = true;
        }
    }
    if (!$matched) {
        throw new RuntimeException('webhook-signature does not match');
    }
    // The original PHP app's header: lowercase hex HMAC-SHA256 of the body alone.
    if (isset($headers['x-webhook-signature'])) {
        $expectedHex = hash_hmac('sha256', $body, $key);
        if (!hash_equals($expectedHex, strtolower(trim($headers['x-webhook-signature'])))) {
            throw new RuntimeException('X-Webhook-Signature does not match');
        }
    }
}

if (PHP_SAPI !== 'cli') { // an endpoint: built-in server, php-fpm, mod_php
    $headers = array_change_key_case(getallheaders(), CASE_LOWER);
    $body = file_get_contents('php://input');
    try {
        rowhook_verify(getenv('WEBHOOK_SECRET'), $headers, $body);
    } catch (RuntimeException $e) {
        http_response_code(401);
        header('Content-Type: text/plain');
        echo 'invalid signature: ', $e->getMessage();
        return;
    }
    // Verified. Deduplicate on webhook-id, then handle json_decode($body, true).
    header('Content-Type: text/plain');
    echo 'ok';
}
