// drive.js — the dashboard in headless Chromium (Debian's chromium, driven by
// puppeteer-core) for tests/integration/test_ui.py. Reads a JSON spec on
// stdin: {base, admin_key, consumer_key, revoke_prefix, out_dir, chromium, team
// (the team the Team view shows)};
// writes one JSON result on stdout: the figures each view shows, the
// console's CSP violations and errors, the storage used, the screenshots.
"use strict";
const fs = require("fs");
const path = require("path");
const puppeteer = require("puppeteer-core");

const VIEWS = ["spend", "team", "daily", "keys", "quotas", "denials", "models", "tools"];

async function main() {
    const spec = JSON.parse(fs.readFileSync(0, "utf8"));
    const profile = fs.mkdtempSync(path.join(spec.tmp || "/tmp", "tollgate-chromium-"));
    const browser = await puppeteer.launch({
        executablePath: spec.chromium || "/usr/bin/chromium",
        headless: true,
        userDataDir: profile,
        args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--disable-sync", "--metrics-recording-only",
            "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--window-size=1280,1000"],
        defaultViewport: { width: 1280, height: 1000 },
    });
    const result = { console: [], csp: [], page_errors: [], failed_requests: [], views: {}, screenshots: [] };
    try {
        const page = await browser.newPage();
        page.on("console", (m) => {
            const text = m.text();
            result.console.push(m.type() + ": " + text);
            if (/Content.Security.Policy/i.test(text)) result.csp.push(text);
        });
        page.on("pageerror", (e) => result.page_errors.push(String(e)));
        page.on("requestfailed", (r) => result.failed_requests.push(r.url()));
        page.on("dialog", (d) => d.type() === "prompt" ? d.accept(spec.prompt_answer || "") : d.accept());
        await page.evaluateOnNewDocument(() => {
            document.addEventListener("securitypolicyviolation", (e) =>
                console.error("Content-Security-Policy violation: " + e.violatedDirective + " " + e.blockedURI));
        });
        const shot = async (name) => {
            const file = path.join(spec.out_dir, name + ".png");
            await page.screenshot({ path: file, fullPage: true });
            result.screenshots.push(file);
        };
        const resp = await page.goto(spec.base + "/admin/ui/", { waitUntil: "networkidle0" });
        result.index_status = resp.status();
        result.index_csp = resp.headers()["content-security-policy"] || null;

        // a consumer key cannot sign in
        const signIn = async (key) => {
            await page.evaluate(() => { document.getElementById("login-error").textContent = ""; });
            await page.type("#login-key", key);
            await page.click("#login-submit");
            await page.waitForFunction(() => document.body.dataset.state === "ready" ||
                document.getElementById("login-error").textContent !== "", { timeout: 15000 });
        };
        await signIn(spec.consumer_key);
        result.consumer = await page.evaluate(() => ({
            error: document.getElementById("login-error").textContent,
            nav_hidden: document.getElementById("nav").hidden,
            stored: sessionStorage.getItem("tollgate.admin_key"),
        }));
        await shot("login-refused");

        await signIn(spec.admin_key);
        result.storage = await page.evaluate(() => ({
            session: sessionStorage.getItem("tollgate.admin_key") !== null,
            local: localStorage.length,
            cookies: document.cookie,
        }));
        // a click that loads a view: done once the view says ready or error
        const load = async (selector) => {
            await page.evaluate(() => { document.body.dataset.state = "clicked"; });
            await page.click(selector);
            await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state),
                { timeout: 20000 });
        };
        if (spec.from) {
            await page.$eval("#range-from", (e, v) => { e.value = v; }, spec.from);
            await page.$eval("#range-to", (e, v) => { e.value = v; }, spec.to);
            await load("#range-apply");
        }
        for (const view of VIEWS) {
            await load('#nav [data-view="' + view + '"]');
            if (view === "team" && spec.team) { /* choose the team: the view reloads */
                await page.evaluate(() => { document.body.dataset.state = "clicked"; });
                await page.select("#team-select", spec.team);
                await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state),
                    { timeout: 20000 });
            }
            result.views[view] = await page.evaluate((v) => {
                const sec = document.getElementById("view-" + v);
                const fig = (id) => {
                    const e = document.getElementById(id);
                    return e ? { text: e.textContent, micros: e.dataset.micros, from: e.dataset.from, to: e.dataset.to } : null;
                };
                return {
                    state: document.body.dataset.state,
                    status: document.getElementById("status").textContent,
                    tables: [...sec.querySelectorAll("table")].map((t) => ({
                        report: t.dataset.report, id: t.parentElement.id,
                        rows: [...t.querySelectorAll("tbody tr")].map((tr) =>
                            [...tr.children].map((td) => td.dataset.micros !== undefined ? td.dataset.micros : td.textContent)),
                    })),
                    canvases: sec.querySelectorAll("canvas").length,
                    this_month: fig("total-this-month"), last_month: fig("total-last-month"),
                    team_total: fig("team-total"), team: document.getElementById("team-select").value,
                    daily_total: fig("daily-total"),
                };
            }, view);
            await shot("view-" + view);
        }
        // revoke a key from the page (the confirmation is accepted)
        await load('#nav [data-view="keys"]');
        await page.click('#table-keys tr[data-prefix="' + spec.revoke_prefix + '"] button.revoke');
        await page.waitForFunction((p) => {
            const tr = document.querySelector('#table-keys tr[data-prefix="' + p + '"]');
            return document.body.dataset.state === "ready" && tr && !tr.querySelector("button.revoke");
        }, { timeout: 15000 }, spec.revoke_prefix);
        result.revoked_row = await page.$eval('#table-keys tr[data-prefix="' + spec.revoke_prefix + '"]',
            (tr) => [...tr.children].map((td) => td.textContent));
        await shot("view-keys-revoked");
        // the printable statement
        await load('#nav [data-view="team"]');
        await page.emulateMediaType("print");
        await shot("statement-print");
        const pdf = path.join(spec.out_dir, "statement.pdf");
        await page.pdf({ path: pdf, format: "A4" });
        result.screenshots.push(pdf);
    } catch (e) {
        process.stderr.write("so far: " + JSON.stringify(result) + "\n");
        throw e;
    } finally {
        await browser.close();
        fs.rmSync(profile, { recursive: true, force: true });
    }
    process.stdout.write(JSON.stringify(result));
}

main().catch((e) => {
    process.stderr.write(String(e && e.stack || e) + "\n");
    process.exit(1);
});
