// The console in a real browser: Debian's chromium, driven by playwright-core.
//
// Run by tests/it/console.rs, which starts rowhook (with an admin and a read token), MariaDB and
// the receivers, and passes them in the environment:
//   ROWHOOK_URL          the console's server, e.g. http://127.0.0.1:PORT
//   ADMIN_TOKEN          an admin token; READ_TOKEN a read token
//   RECEIVER_OK          answers 200
//   RECEIVER_FLAKY       answers 500 to the first 3 requests about "Printer on fire", then 200
//   RECEIVER_HOSTILE     answers 500 with <script>window.__pwned=1</script> as its body
//   HOSTILE_URL          the URL of a webhook inserted with SQL: <img src=x onerror=alert(2)> in it
//   SQL                  a JSON array: the mariadb client and its arguments, to which a statement is appended
//   SCREENSHOTS          a directory for screenshots of every page; DOCS_SCREENSHOTS: also there (optional)
//   CHROMIUM             the browser (default /usr/bin/chromium)
// Prints one line per step and a last line "N passed, N failed"; exits 1 on any failure, any
// console error, page error or dialog (alert, confirm: the console uses none of them).
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through tests/it/console.rs)`);
  return value;
};
const BASE = env("ROWHOOK_URL");
const ADMIN = env("ADMIN_TOKEN");
const READ = env("READ_TOKEN");
const OK_URL = env("RECEIVER_OK");
const FLAKY_URL = env("RECEIVER_FLAKY");
const HOSTILE_RECEIVER = env("RECEIVER_HOSTILE");
const HOSTILE_URL = env("HOSTILE_URL");
const SQL = JSON.parse(env("SQL"));
const SHOTS = env("SCREENSHOTS");
const DOCS = process.env.DOCS_SCREENSHOTS || "";
const SUBJECT = "<img src=x onerror=alert(1)>";
mkdirSync(SHOTS, { recursive: true });

function sql(statement) {
  execFileSync(SQL[0], [...SQL.slice(1), statement], { stdio: ["ignore", "pipe", "pipe"] });
}

// The first value of a query's answer.
function sqlValue(statement) {
  const out = execFileSync(SQL[0], [...SQL.slice(1, -1), "-N", "-B", "-e", statement], { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  return out.trim().split("\t")[0];
}

let passed = 0;
let failed = 0;
const problems = []; // console errors, page errors, dialogs: each fails the run

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    passed += 1;
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${name}: ${error && error.stack ? error.stack : error}`);
    throw error;
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

// A refusal a step provokes on purpose (the browser logs every 4xx answer as an error).
let expectedRefusal = null;

function watch(page, label) {
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    if (expectedRefusal && expectedRefusal.test(msg.text())) return;
    problems.push(`${label}: console error: ${msg.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${label}: page error: ${error.message}`));
  page.on("dialog", async (dialog) => {
    problems.push(`${label}: a ${dialog.type()} dialog opened: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
}

async function shot(page, name, { docs = false, fullPage = true } = {}) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
  if (docs && DOCS) await page.screenshot({ path: join(DOCS, `console-${name}.png`), fullPage: false });
}

/// Waits until `predicate` (run in the page) is true, polling; the page is never reloaded.
async function until(page, predicate, arg, what, timeout = 20000) {
  try {
    await page.waitForFunction(predicate, arg, { timeout, polling: 200 });
  } catch (error) {
    throw new Error(`${what} did not happen within ${timeout} ms: ${error.message.split("\n")[0]}`);
  }
}

/// Presses Tab until the focused element matches `test` (run in the page); fails after `max` presses.
async function tabTo(page, test, arg, what, max = 80) {
  for (let i = 0; i < max; i += 1) {
    if (await page.evaluate(test, arg)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${what}`);
}

async function signIn(page, token) {
  await page.goto(`${BASE}/console/login`);
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(`${BASE}/console`), page.click('button[type="submit"]')]);
}

async function webhookIdFromUrl(page) {
  const match = /\/console\/webhooks\/(\d+)$/.exec(new URL(page.url()).pathname);
  expect(match, `not on a webhook's page: ${page.url()}`);
  return Number(match[1]);
}

async function register(page, url, events) {
  await page.goto(`${BASE}/console/webhooks`);
  await page.fill("#new-url", url);
  for (const type of events) await page.check(`#new-form input[name="events"][value="${type}"]`);
  await page.click('#new-form button[type="submit"]');
  await page.waitForSelector("#secret-dialog[open]");
  const secret = await page.inputValue("#secret-value");
  expect(secret.startsWith("whsec_"), `the new secret is shown once: ${secret}`);
  await Promise.all([page.waitForURL(/\/console\/webhooks\/\d+$/), page.click("#secret-close")]);
  return webhookIdFromUrl(page);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
  ],
});

let exitCode = 1;
try {
  const admin = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await admin.newPage();
  watch(page, "admin");
  let okId;
  let flakyId;

  await step("the console asks for a token, refuses a wrong one and signs in with the right one", async () => {
    await page.goto(`${BASE}/console`);
    expect(page.url() === `${BASE}/console/login`, `redirected to the sign-in page, not ${page.url()}`);
    await shot(page, "login");
    await page.fill("#token", "not-a-token");
    await page.click('button[type="submit"]');
    await page.waitForSelector(".form-error");
    expect((await page.textContent(".form-error")).includes("not one of"), "the wrong token is refused with a reason");
    await signIn(page, ADMIN);
    expect((await page.textContent("h1")).includes("Overview"), "the overview after signing in");
    expect((await page.textContent(".who")).includes("ops"), "the token's name is shown");
    await until(page, () => document.querySelector("#overview-live .pill.ok") !== null, null, "the reader shown as connected");
  });

  await step("the first page is small: under 200 KB transferred", async () => {
    // A context of its own: nothing cached yet.
    const cold = await browser.newContext({ storageState: await admin.storageState() });
    const fresh = await cold.newPage();
    watch(fresh, "weight");
    await fresh.goto(`${BASE}/console`, { waitUntil: "load" });
    const bytes = await fresh.evaluate(() =>
      [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")].reduce((sum, e) => sum + e.transferSize, 0));
    await cold.close();
    expect(bytes > 1000 && bytes < 200 * 1024, `the overview, its style and script: ${bytes} bytes`);
    console.log(`# overview with its assets: ${bytes} bytes`);
  });

  await step("register a webhook to a real receiver; the secret is shown once", async () => {
    okId = await register(page, OK_URL, ["thread.created"]);
    expect((await page.textContent("h1")).includes(`#${okId}`), "the new webhook's page");
  });

  await step("a row inserted with SQL appears as a delivery without a reload", async () => {
    await page.evaluate(() => { window.__samePage = true; });
    sql("INSERT INTO threads (subject, status) VALUES ('Hello from the browser test', 'open')");
    await until(page, () => document.querySelector('#deliveries-live tr[data-status="delivered"]') !== null, null, "a delivered row");
    expect(await page.evaluate(() => window.__samePage === true), "the page was not reloaded");
    const text = await page.textContent("#deliveries-live");
    expect(text.includes("thread.created"), `the delivery's event type is shown: ${text}`);
  });

  await step("a failing receiver is shown as failing, with its error", async () => {
    flakyId = await register(page, FLAKY_URL, ["thread.created"]);
    sql("INSERT INTO threads (subject, status) VALUES ('Printer on fire', 'open')");
    // Three attempts (100 ms apart in the test config), then the delivery has failed.
    await until(page, () => document.querySelector('#deliveries-live tr[data-status="failed"]') !== null, null, "a failed row", 30000);
    const row = await page.textContent('#deliveries-live tr[data-status="failed"]');
    expect(row.includes("HTTP 500"), `the failed row says HTTP 500: ${row}`);
    await page.reload();
    const health = await page.textContent("#health");
    expect(health.includes("failing") && health.includes("500"), `the webhook's health: ${health}`);
    await page.goto(`${BASE}/console/webhooks`);
    const listed = await page.textContent(`#webhook-${flakyId}`);
    expect(listed.includes("failing") && listed.includes("HTTP 500"), `the list says failing with the error: ${listed}`);
    await shot(page, "webhooks");
  });

  await step("a delivery shows its body, headers and every attempt; retry from the page succeeds", async () => {
    await page.goto(`${BASE}/console/webhooks/${flakyId}?status=failed`);
    await page.click('#deliveries-live tr[data-status="failed"] a');
    await page.waitForSelector("#delivery-body");
    const attempts = await page.$$eval("article.attempt", (items) => items.map((a) => a.textContent));
    expect(attempts.length === 3 && attempts.every((a) => a.includes("HTTP 500") && a.includes("status 500")), `three failed attempts with their answers: ${attempts}`);
    const headers = await page.textContent("table.headers");
    for (const name of ["x-webhook-event", "webhook-id", "webhook-timestamp", "webhook-signature", "x-webhook-signature", "user-agent"]) {
      expect(headers.includes(name), `header ${name} is listed`);
    }
    expect(headers.includes("not shown") && !/whsec_|v1,[A-Za-z0-9+/]{20}/.test(headers), "no signature or secret shown");
    expect((await page.textContent("#delivery-body")).includes("Printer on fire"), "the body sent");
    await shot(page, "delivery");
    await page.click("#retry");
    await until(page, () => document.querySelector('#delivery-status .status-delivered') !== null, null, "the retried delivery delivered");
    expect((await page.$$("article.attempt")).length === 4, "the fourth attempt, the successful one, is listed");
    await page.goto(`${BASE}/console/webhooks/${flakyId}`);
    expect((await page.textContent("#health")).includes("healthy"), "healthy again after the successful retry");
  });

  await step("filters: status and event type, newest first", async () => {
    await page.goto(`${BASE}/console/webhooks/${okId}`);
    await page.selectOption("#f-status", "delivered");
    await page.selectOption("#f-type", "thread.created");
    await Promise.all([page.waitForURL(/status=delivered/), page.click('.filters button[type="submit"]')]);
    const statuses = await page.$$eval("#deliveries-live tr[data-status]", (rows) => rows.map((r) => r.getAttribute("data-status")));
    expect(statuses.length >= 2 && statuses.every((s) => s === "delivered"), `only delivered rows: ${statuses}`);
    const ids = await page.$$eval("#deliveries-live tr[data-status]", (rows) => rows.map((r) => Number(r.id.replace("delivery-", ""))));
    expect(ids.every((id, i) => i === 0 || ids[i - 1] > id), `newest first: ${ids}`);
    await page.selectOption("#f-status", "waiting");
    await Promise.all([page.waitForURL(/status=waiting/), page.click('.filters button[type="submit"]')]);
    expect((await page.textContent("#deliveries-live")).includes("No delivery matches"), "nothing waits");
  });

  await step("disable and enable", async () => {
    await page.goto(`${BASE}/console/webhooks/${okId}`);
    await Promise.all([page.waitForEvent("load"), page.click("#disable")]);
    await page.waitForSelector("#enable");
    expect((await page.textContent("#health")).includes("disabled"), "shown as disabled");
    const state = await page.request.get(`${BASE}/api/webhooks/${okId}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    expect((await state.json()).data.is_active === false, "inactive in the API too");
    await Promise.all([page.waitForEvent("load"), page.click("#enable")]);
    await page.waitForSelector("#disable");
    expect(!(await page.textContent("#health")).includes("disabled"), "active again");
  });

  await step("rotate the secret (with confirmation) and send a test event", async () => {
    await page.goto(`${BASE}/console/webhooks/${okId}`);
    await page.click("#rotate");
    await page.waitForSelector("#confirm-dialog[open]");
    await page.click("#confirm-ok");
    await page.waitForSelector("#secret-dialog[open]");
    expect((await page.inputValue("#secret-value")).startsWith("whsec_"), "the new secret, once");
    await Promise.all([page.waitForEvent("load"), page.click("#secret-close")]);
    await page.click("#send-test");
    await until(page, () => [...document.querySelectorAll('#deliveries-live tr[data-status="delivered"]')].some((r) => r.textContent.includes("webhook.test")), null, "the test event delivered");
    await shot(page, "webhook", { docs: true });
  });

  await step("backfill and replay from the page, with their progress", async () => {
    await page.goto(`${BASE}/console/webhooks/${okId}`);
    await page.evaluate(() => { window.__samePage = true; });
    const threads = Number(sqlValue("SELECT COUNT(*) FROM threads"));
    expect(threads >= 2, `threads to backfill: ${threads}`);
    await page.selectOption("#bf-type", "thread.created");
    await page.click('#backfill-form button[type="submit"]');
    await until(page, () => document.querySelector('#backfills-live tr[data-state="done"]') !== null, null, "the backfill done, without a reload", 30000);
    const row = await page.textContent('#backfills-live tr[data-state="done"]');
    expect(row.includes(`${threads} of ${threads} read`) && row.includes(`${threads} sent`), `its progress: ${row}`);
    expect(await page.evaluate(() => window.__samePage === true), "the page was not reloaded");
    // A bad filter is refused with the API's reason, next to the form.
    await page.fill("#bf-filter", "not json");
    await page.click('#backfill-form button[type="submit"]');
    await until(page, () => /not JSON/.test(document.querySelector("#backfill-form .form-error").textContent), null, "the filter refused");
    await page.fill("#bf-filter", '[{"column": "nope", "equals": 1}]');
    expectedRefusal = /status of 422/;
    await page.click('#backfill-form button[type="submit"]');
    await until(page, () => /nope/.test(document.querySelector("#backfill-form .form-error").textContent), null, "the API's refusal shown");
    expectedRefusal = null;
    await page.fill("#bf-filter", "");
    // Replay from the history: everything of the last hour again.
    const hourAgo = new Date(Date.now() - 3600 * 1000).toISOString().slice(0, 16);
    await page.fill("#rh-since", hourAgo);
    await page.selectOption("#rh-status", "all");
    await page.click('#replay-history-form button[type="submit"]');
    await until(page, () => /Replay queued: \d+ deliveries queued again/.test(document.querySelector("#status").textContent), null, "the replay's count");
    const replayed = Number(/(\d+) deliveries queued again/.exec(await page.textContent("#status"))[1]);
    expect(replayed >= threads, `every delivery of the hour queued again: ${replayed}`);
    await shot(page, "replay-backfill");
  });

  await step("hostile data stays text: a subject and a response body with markup run nothing", async () => {
    const created = await page.request.post(`${BASE}/api/webhooks`, {
      headers: { Authorization: `Bearer ${ADMIN}` },
      data: { url: HOSTILE_RECEIVER, events: ["thread.created"] },
    });
    expect(created.status() === 201, `registered: ${created.status()}`);
    const hostileId = (await created.json()).data.id;
    sql(`INSERT INTO threads (subject, status) VALUES ('${SUBJECT}', 'open')`);
    await page.goto(`${BASE}/console/webhooks/${hostileId}`);
    await until(page, () => document.querySelector("#deliveries-live tr[data-status] a") !== null, null, "the hostile delivery listed");
    await until(page, () => /HTTP 500/.test(document.querySelector("#deliveries-live").textContent), null, "its first answer");
    await page.click("#deliveries-live tr[data-status] a");
    await page.waitForSelector("#delivery-body");
    expect((await page.textContent("#delivery-body")).includes(SUBJECT), "the subject is shown as text");
    const responses = await page.$$eval("pre.response", (pres) => pres.map((p) => p.textContent));
    expect(responses.some((r) => r.includes("<script>window.__pwned=1</script>")), `the response body is shown as text: ${responses}`);
    await page.goto(`${BASE}/console/webhooks`);
    expect((await page.textContent("table.webhooks")).includes(HOSTILE_URL), "the URL inserted with SQL is shown as text");
    for (const path of [`/console/webhooks`, `/console/webhooks/${hostileId}`]) {
      await page.goto(`${BASE}${path}`);
      await page.waitForTimeout(300);
      expect(await page.evaluate(() => document.querySelectorAll("img, script:not([src])").length === 0), `${path}: no element made of the data`);
      expect(await page.evaluate(() => window.__pwned === undefined), `${path}: no script of the data ran`);
    }
  });

  await step("keyboard only: register a webhook, then delete it with the confirmation", async () => {
    await page.goto(`${BASE}/console/webhooks`);
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await tabTo(page, () => document.activeElement.id === "new-url", null, "the URL field");
    await page.keyboard.type(OK_URL + "?keyboard=1");
    await tabTo(page, () => document.activeElement.name === "events" && document.activeElement.value === "note.added", null, "the note.added box");
    await page.keyboard.press("Space");
    await tabTo(page, () => document.activeElement.matches('#new-form button[type="submit"]'), null, "Register");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#secret-dialog[open]");
    await tabTo(page, () => document.activeElement.id === "secret-close", null, "Done");
    await Promise.all([page.waitForURL(/\/console\/webhooks\/\d+$/), page.keyboard.press("Enter")]);
    const id = await webhookIdFromUrl(page);
    expect((await page.textContent("dl.facts")).includes("note.added"), "subscribed to note.added");
    await tabTo(page, () => document.activeElement.id === "delete", null, "Delete");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#confirm-dialog[open]");
    await tabTo(page, () => document.activeElement.id === "confirm-ok", null, "Confirm");
    await Promise.all([page.waitForURL(`${BASE}/console/webhooks`), page.keyboard.press("Enter")]);
    expect((await page.$(`#webhook-${id}`)) === null, "deleted");
  });

  await step("event types: the rules", async () => {
    await page.goto(`${BASE}/console/event-types`);
    const rules = await page.$$eval("section.rule", (s) => s.map((r) => r.textContent));
    expect(rules.length === 6, `six rules: ${rules.length}`);
    expect(rules.some((r) => r.includes("email.sent") && r.includes("became non-NULL") && r.includes("thread_id")), "conditions, fields and group");
    await shot(page, "event-types");
  });

  await step("the overview counts and charts what happened", async () => {
    await page.goto(`${BASE}/console`);
    await until(page, () => /attempts delivered/.test(document.querySelector("#chart-summary").textContent), null, "the chart's summary");
    const text = await page.textContent("#overview-live");
    expect(text.includes("active") && text.includes("No other instance is standing by"), `the instances: ${text}`);
    expect(/\d/.test(await page.textContent("#lag-bytes")), "the lag in bytes");
    await shot(page, "overview", { docs: true });
  });

  await step("a read token sees everything and can change nothing", async () => {
    const reader = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const rpage = await reader.newPage();
    watch(rpage, "read");
    await signIn(rpage, READ);
    expect((await rpage.textContent(".who")).includes("read"), "the read scope is shown");
    for (const path of ["/console/webhooks", `/console/webhooks/${okId}`]) {
      await rpage.goto(`${BASE}${path}`);
      expect((await rpage.$$("[data-api], form[data-api-form]")).length === 0, `${path}: no controls`);
    }
    const csrf = await rpage.getAttribute('meta[name="csrf-token"]', "content");
    const refused = await reader.request.put(`${BASE}/api/webhooks/${okId}`, {
      headers: { "X-CSRF-Token": csrf },
      data: { is_active: false },
    });
    const body = await refused.json();
    expect(refused.status() === 403 && body.error.includes("needs scope admin"), `the API refuses: ${refused.status()} ${JSON.stringify(body)}`);
    await reader.close();
  });

  await step("a change with the session cookie but without its CSRF token is refused", async () => {
    const refused = await admin.request.put(`${BASE}/api/webhooks/${okId}`, { data: { is_active: false } });
    expect(refused.status() === 403 && (await refused.json()).error.includes("CSRF"), `refused: ${refused.status()}`);
  });

  await step("at 390 px wide every page fits without scrolling sideways", async () => {
    const narrow = await browser.newContext({ viewport: { width: 390, height: 844 }, storageState: await admin.storageState() });
    const npage = await narrow.newPage();
    watch(npage, "390px");
    const delivery = await page.request.get(`${BASE}/api/webhooks/${okId}/deliveries?per_page=1`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    const deliveryId = (await delivery.json()).data[0].id;
    for (const [name, path] of [
      ["overview", "/console"], ["webhooks", "/console/webhooks"], ["webhook", `/console/webhooks/${okId}`],
      ["delivery", `/console/webhooks/${okId}/deliveries/${deliveryId}`], ["event-types", "/console/event-types"],
    ]) {
      await npage.goto(`${BASE}${path}`);
      const [scroll, width, wide] = await npage.evaluate(() => {
        const width = window.innerWidth;
        // The outermost elements that reach past the window, to say what is too wide.
        const clipped = (e) => { for (let p = e.parentElement; p; p = p.parentElement) { if (getComputedStyle(p).overflowX !== "visible") return getComputedStyle(e).position !== "absolute"; } return false; };
        const wide = [...document.body.querySelectorAll("*")]
          .filter((e) => e.getBoundingClientRect().right > width + 1 && !clipped(e))
          .slice(0, 5)
          .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${e.className ? "." + String(e.className).replace(/ /g, ".") : ""} (${Math.round(e.getBoundingClientRect().right)} px)`);
        return [document.documentElement.scrollWidth, width, wide];
      });
      await shot(npage, `${name}-390`);
      expect(scroll <= width, `${path}: ${scroll} px wide in a ${width} px window: ${wide.join(", ")}`);
    }
    await narrow.close();
  });

  await step("sign out: the session is gone", async () => {
    await page.goto(`${BASE}/console`);
    await Promise.all([page.waitForURL(`${BASE}/console/login`), page.click(".signout button")]);
    await page.goto(`${BASE}/console/webhooks`);
    expect(page.url() === `${BASE}/console/login`, "signed out");
    const after = await admin.request.get(`${BASE}/api/webhooks`);
    expect(after.status() === 401, `the old cookie opens nothing: ${after.status()}`);
  });

  await step("no console error, page error or dialog on any page", async () => {
    expect(problems.length === 0, problems.join("\n"));
  });
  exitCode = 0;
} catch (error) {
  if (problems.length) console.log(`# also seen in the browser:\n# ${problems.join("\n# ")}`);
} finally {
  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(exitCode);
}
