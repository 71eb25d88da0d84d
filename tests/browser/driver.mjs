// Cordon's browser driver for the console tests (tests/src/browser.rs): starts Debian's
// Chromium headless through playwright-core, then reads one JSON request per line on stdin
// and answers each with one JSON line on stdout: {"ok":true,...} or {"ok":false,"error":...}.
// The Rust test decides what to do and asserts; this file only drives the browser.
//
// Each person gets a browser context of their own (their own cookies), named by "as".
// Requests: context, goto, fill, click, press, wait (for a selector, optionally its text),
// gone (wait until a selector matches nothing), text, count, attr, url, screenshot, axe,
// download, post (a form POST from the page's own session, as a forged request would be),
// close.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: FLAGS,
});
const people = new Map();

function page(as) {
  const p = people.get(as);
  if (!p) {
    throw new Error(`no browser context named ${as}`);
  }
  return p.page;
}

const requests = {
  // A fresh context (cookies, storage) for one person. The console's certificate is signed
  // by the deployment's own CA, which this browser does not know: its errors are ignored.
  async context(r) {
    const ctx = await browser.newContext({
      ignoreHTTPSErrors: true,
      acceptDownloads: true,
      timezoneId: r.timezone || "UTC",
      viewport: { width: 1280, height: 900 },
    });
    await ctx.grantPermissions(["clipboard-read", "clipboard-write"]).catch(() => {});
    const p = await ctx.newPage();
    p.setDefaultTimeout(r.timeout_ms || 15000);
    const state = { ctx, page: p, console: [] };
    p.on("console", (m) => state.console.push(`${m.type()}: ${m.text()}`));
    p.on("pageerror", (e) => state.console.push(`pageerror: ${e.message} ${e.stack || ""}`));
    people.set(r.as, state);
    return {};
  },
  async goto(r) {
    const res = await page(r.as).goto(r.url, { waitUntil: "domcontentloaded" });
    return { status: res ? res.status() : 0, url: page(r.as).url() };
  },
  async fill(r) {
    await page(r.as).locator(r.sel).fill(r.value);
    return {};
  },
  async click(r) {
    await page(r.as).locator(r.sel).click();
    await page(r.as).waitForLoadState("domcontentloaded");
    return { url: page(r.as).url() };
  },
  async press(r) {
    await page(r.as).keyboard.press(r.key);
    return {};
  },
  async wait(r) {
    let l = page(r.as).locator(r.sel);
    if (r.text) {
      l = l.filter({ hasText: r.text });
    }
    await l.first().waitFor({ state: "visible", timeout: r.timeout_ms });
    return { text: await l.first().innerText() };
  },
  async gone(r) {
    await page(r.as).locator(r.sel).first().waitFor({ state: "detached", timeout: r.timeout_ms });
    return {};
  },
  async text(r) {
    return { text: await page(r.as).locator(r.sel).first().innerText() };
  },
  async count(r) {
    return { n: await page(r.as).locator(r.sel).count() };
  },
  async attr(r) {
    return { value: await page(r.as).locator(r.sel).first().getAttribute(r.name) };
  },
  async url(r) {
    return { url: page(r.as).url(), console: people.get(r.as).console };
  },
  async focused(r) {
    const p = page(r.as);
    return { text: await p.evaluate(() => document.activeElement?.textContent?.trim() || "") };
  },
  async screenshot(r) {
    await page(r.as).screenshot({ path: r.path, fullPage: true });
    return {};
  },
  // axe-core in the page (evaluated through the DevTools protocol, which the page's CSP does
  // not govern); the violations of impact serious or critical.
  async axe(r) {
    const p = page(r.as);
    await p.evaluate(AXE);
    const result = await p.evaluate(() =>
      globalThis.axe.run(document, { resultTypes: ["violations"] }),
    );
    const serious = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
    return {
      violations: serious.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
      })),
    };
  },
  async download(r) {
    const p = page(r.as);
    const [d] = await Promise.all([p.waitForEvent("download"), p.locator(r.sel).click()]);
    const path = `${r.dir}/${d.suggestedFilename()}`;
    await d.saveAs(path);
    return { path, name: d.suggestedFilename() };
  },
  // A form POST carrying this person's cookies, as a page on another tab or a script would
  // send it (no browser navigation): the status the server answers.
  async post(r) {
    const res = await people.get(r.as).ctx.request.post(r.url, {
      form: r.form,
      maxRedirects: 0,
      failOnStatusCode: false,
    });
    return { status: res.status(), location: res.headers().location || "" };
  },
  async close() {
    await browser.close();
    process.exit(0);
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let answer;
  try {
    const r = JSON.parse(line);
    const run = requests[r.op];
    if (!run) {
      throw new Error(`unknown request ${r.op}`);
    }
    answer = { ok: true, ...(await run(r)) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
await browser.close();
