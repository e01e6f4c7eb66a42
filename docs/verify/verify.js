// Verify rowhook webhooks in Node.js (no dependencies).
//
// Use verify(secret, headers, body) in your own endpoint (Express: read the raw
// body with express.raw({ type: "application/json" })), or run this file as a
// small receiver:  WEBHOOK_SECRET=whsec_... PORT=8000 node verify.js
"use strict";
const crypto = require("node:crypto");
const http = require("node:http");

const TOLERANCE = 5 * 60; // seconds: refuse replays of old deliveries

// whsec_<base64> secrets are base64 keys; any other secret is used as UTF-8 bytes.
function signingKey(secret) {
  return secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
}

function safeEqual(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

// Throws unless the request was signed with `secret`. `headers`: lowercase names
// (Node's req.headers); `body`: the raw Buffer, exactly as received.
function verify(secret, headers, body, now = Date.now() / 1000) {
  const key = signingKey(secret);
  const id = headers["webhook-id"] || "";
  const timestamp = headers["webhook-timestamp"] || "";
  if (!id || !/^\d+$/.test(timestamp)) throw new Error("missing webhook-id or webhook-timestamp");
  if (Math.abs(now - Number(timestamp)) > TOLERANCE) throw new Error("webhook-timestamp is more than 5 minutes away from now");
  // Standard Webhooks: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"; several
  // space-separated "v1,<sig>" entries while a secret is being rotated.
  const expected = crypto.createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest("base64");
  const given = (headers["webhook-signature"] || "").split(" ").filter((s) => s.startsWith("v1,")).map((s) => s.slice(3));
  if (!given.some((s) => safeEqual(s, expected))) throw new Error("webhook-signature does not match");
  // The original PHP app's header: lowercase hex HMAC-SHA256 of the body alone.
  const seed = headers["x-webhook-signature"];
  if (seed !== undefined) {
    const expectedHex = crypto.createHmac("sha256", key).update(body).digest("hex");
    if (!safeEqual(seed.trim().toLowerCase(), expectedHex)) throw new Error("X-Webhook-Signature does not match");
  }
}

module.exports = { verify };

if (require.main === module) {
  const port = Number(process.env.PORT || 8000);
  http
    .createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        try {
          verify(process.env.WEBHOOK_SECRET, req.headers, Buffer.concat(chunks));
        } catch (e) {
          res.writeHead(401, { "content-type": "text/plain" }).end(`invalid signature: ${e.message}`);
          return;
        }
        // Verified. Deduplicate on webhook-id, then handle JSON.parse(body).
        res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      });
    })
    .listen(port, "127.0.0.1", () => console.log(`verifying webhooks on http://127.0.0.1:${port}/`));
}
