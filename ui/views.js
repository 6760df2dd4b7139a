/*
 * views.js — one loader per view: each reads the report endpoints
 * (/admin/reports/*) and renders tables and charts, and each change goes
 * through the admin API (audited there). Money is shown from the reports'
 * *_usd strings, summed and compared as BigInt micro-dollars (money.js).
 */
"use strict";

const Views = (() => {
    const { report, table, chart, moneyAxis, el, api, status } = App;
    const PALETTE = ["#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6",
        "#a9373b", "#3b8686", "#7f7f7f", "#d16ba5"];

    const tokens = [
        { key: "requests", label: "Requests" },
        { key: "input_tokens", label: "Input tokens" },
        { key: "output_tokens", label: "Output tokens" },
        { key: "cache_read_tokens", label: "Cache read" },
        { key: "cache_write_tokens", label: "Cache write" },
        { key: "cost_usd", label: "Cost", money: true },
    ];

    function months(to) {
        const d = new Date(to + "T00:00:00Z");
        const y = d.getUTCFullYear(), m = d.getUTCMonth();
        const day = (yy, mm, dd) => App.isoDay(new Date(Date.UTC(yy, mm, dd)));
        return {
            this: { from: day(y, m, 1), to },
            last: { from: day(y, m - 1, 1), to: day(y, m, 0) },
        };
    }

    function setMoney(id, usdText, range) {
        const e = document.getElementById(id);
        const micros = Money.fromUsd(usdText);
        e.textContent = Money.usd(micros);
        e.dataset.micros = micros.toString();
        if (range) {
            e.dataset.from = range.from;
            e.dataset.to = range.to;
        }
        return micros;
    }

    function usdOf(row) {
        return row ? row.cost_usd : "0.000000";
    }

    async function spend(state) {
        const m = months(state.to);
        const [now, last, models, nowPairs, lastPairs] = await Promise.all([
            report("chargeback", Object.assign({ by: "group" }, m.this)),
            report("chargeback", Object.assign({ by: "group" }, m.last)),
            report("chargeback", Object.assign({ by: "model" }, m.this)),
            report("chargeback", Object.assign({ by: "group,model" }, m.this)),
            report("chargeback", Object.assign({ by: "group,model" }, m.last)),
        ]);
        document.getElementById("spend-this-label").textContent = m.this.from + " … " + m.this.to;
        document.getElementById("spend-last-label").textContent = m.last.from + " … " + m.last.to;
        const a = setMoney("total-this-month", now.total.cost_usd, m.this);
        const b = setMoney("total-last-month", last.total.cost_usd, m.last);
        document.getElementById("total-change").textContent =
            Money.usd(a - b) + " (" + Money.change(a, b) + ")";
        const teams = [...new Set(now.rows.map((r) => r.group_id).concat(last.rows.map((r) => r.group_id)))];
        const find = (doc, g) => doc.rows.find((r) => r.group_id === g);
        const rows = teams.map((g) => ({
            group_id: g,
            this_usd: usdOf(find(now, g)),
            last_usd: usdOf(find(last, g)),
        }));
        table("table-spend-teams", [
            { key: "group_id", label: "Team" },
            { key: "this_usd", label: "This month", money: true },
            { key: "last_usd", label: "Last month", money: true },
            { key: "change", label: "Change", render: (r) => Money.change(Money.fromUsd(r.this_usd), Money.fromUsd(r.last_usd)) },
        ], rows, { report: "chargeback", params: Object.assign({ by: "group" }, m.this) },
        { this_usd: now.total.cost_usd, last_usd: last.total.cost_usd, change: "" });
        /* each team's bar stacked by model: last month's (paler) beside this month's */
        const pairKey = (r) => r.group_id + "\u0000" + r.model;
        const pairs = new Map();
        for (const [doc, field] of [[nowPairs, "this_usd"], [lastPairs, "last_usd"]])
            for (const r of doc.rows) {
                const p = pairs.get(pairKey(r)) || { group_id: r.group_id, model: r.model, this_usd: "0.000000", last_usd: "0.000000" };
                p[field] = r.cost_usd;
                pairs.set(pairKey(r), p);
            }
        const pairRows = [...pairs.values()];
        const teamModels = [...new Set(pairRows.map((p) => p.model))];
        const stackOf = (field, month, alpha) => teamModels.map((model, i) => ({
            label: model + " (" + month + ")", stack: month,
            backgroundColor: PALETTE[i % PALETTE.length] + alpha,
            data: teams.map((g) => {
                const p = pairs.get(g + "\u0000" + model);
                return Money.plot(Money.fromUsd(p ? p[field] : "0.000000"));
            }),
        }));
        chart("chart-spend-teams", {
            type: "bar",
            data: { labels: teams, datasets: stackOf("last_usd", "last month", "66").concat(stackOf("this_usd", "this month", "")) },
            options: { scales: { x: { stacked: true }, y: Object.assign({ stacked: true }, moneyAxis) } },
        });
        chart("chart-spend-models", {
            type: "bar",
            data: {
                labels: ["this month"],
                datasets: models.rows.map((r, i) => ({
                    label: r.model, backgroundColor: PALETTE[i % PALETTE.length],
                    data: [Money.plot(Money.fromUsd(r.cost_usd))],
                })),
            },
            options: { indexAxis: "y", scales: { x: Object.assign({ stacked: true }, moneyAxis), y: { stacked: true } } },
        });
        table("table-spend-models", [{ key: "model", label: "Model" }].concat(tokens), models.rows,
            { report: "chargeback", params: Object.assign({ by: "model" }, m.this) }, models.total);
        table("table-spend-team-models", [
            { key: "group_id", label: "Team" }, { key: "model", label: "Model" },
            { key: "this_usd", label: "This month", money: true },
            { key: "last_usd", label: "Last month", money: true },
        ], pairRows, { report: "chargeback", params: Object.assign({ by: "group,model" }, m.this) },
        { this_usd: nowPairs.total.cost_usd, last_usd: lastPairs.total.cost_usd });
    }

    async function team(state) {
        const range = { from: state.from, to: state.to };
        const [groups, keys, quotas] = await Promise.all([
            report("chargeback", Object.assign({ by: "group" }, range)),
            report("keys"),
            report("quotas"),
        ]);
        const select = document.getElementById("team-select");
        const names = [...new Set(groups.rows.map((r) => r.group_id).concat(keys.rows.map((k) => k.group_id)))].sort();
        const chosen = state.team && names.includes(state.team) ? state.team : names[0];
        select.textContent = "";
        for (const n of names) select.append(el("option", { value: n, text: n }));
        select.value = chosen || "";
        select.onchange = () => { state.team = select.value; App.show("team"); };
        document.getElementById("team-print").onclick = () => window.print();
        if (!chosen) return;
        state.team = chosen;
        document.getElementById("team-name").textContent = chosen;
        document.getElementById("team-period").textContent = range.from + " to " + range.to;
        setMoney("team-total", usdOf(groups.rows.find((r) => r.group_id === chosen)), range);
        /* the team's own usage rows only: a user who also spends in another team shows this team's part */
        const userParams = Object.assign({ by: "user", group: chosen }, range);
        const modelParams = Object.assign({ by: "model", group: chosen }, range);
        const [users, teamModels] = await Promise.all([
            report("chargeback", userParams), report("chargeback", modelParams)]);
        const members = new Set(keys.rows.filter((k) => k.group_id === chosen).map((k) => k.user_id)
            .concat(users.rows.map((r) => r.user_id)));
        table("table-team-users", [{ key: "user_id", label: "User" }].concat(tokens), users.rows,
            { report: "chargeback", params: userParams }, users.total);
        table("table-team-models", [{ key: "model", label: "Model" }].concat(tokens), teamModels.rows,
            { report: "chargeback", params: modelParams }, teamModels.total);
        const budgets = quotas.rows.filter((q) => (q.subject_kind === "group" && q.subject === chosen) ||
            (q.subject_kind === "user" && members.has(q.subject)));
        const amount = (field) => (q) => q.metric === "usd" ? Money.usd(BigInt(q[field])) : String(q[field]);
        table("table-team-budgets", [
            { key: "subject_kind", label: "Kind" }, { key: "subject", label: "Subject" },
            { key: "metric", label: "Metric" }, { key: "window", label: "Window" },
            { key: "used", label: "Used", render: amount("used") },
            { key: "reserved", label: "Reserved", render: amount("reserved") },
            { key: "limit_value", label: "Limit", render: amount("limit_value") },
            { key: "remaining", label: "Remaining", render: amount("remaining") },
            { key: "resets_at", label: "Resets (UTC)" },
        ], budgets, { report: "quotas", params: {} });
        const series = await report("series", Object.assign({ subject: "group", id: chosen, bucket: "day" }, range));
        dailyChart("chart-team-daily", series);
    }

    function dailyChart(id, series) {
        chart(id, {
            type: "bar",
            data: {
                labels: series.rows.map((r) => r.bucket),
                datasets: [{ label: "cost", backgroundColor: PALETTE[0], data: series.rows.map((r) => Money.plot(Money.fromUsd(r.cost_usd))) }],
            },
            options: { scales: { y: moneyAxis } },
        });
    }

    async function daily(state) {
        const select = document.getElementById("daily-subject");
        if (select.options.length === 1) {
            const groups = await report("chargeback", { by: "group", from: state.from, to: state.to });
            for (const g of groups.rows) select.append(el("option", { value: "group:" + g.group_id, text: "team " + g.group_id }));
            select.onchange = () => App.show("daily");
        }
        const [subject, id] = select.value.split(/:(.*)/);
        const params = { subject, id, bucket: "day", from: state.from, to: state.to };
        const series = await report("series", params);
        dailyChart("chart-daily", series);
        const t = table("table-daily", [{ key: "bucket", label: "Day" }].concat(tokens), series.rows,
            { report: "series", params }, series.total);
        const total = t.querySelector("tr.total td.money");
        if (total) {
            total.id = "daily-total";
            total.dataset.from = state.from;
            total.dataset.to = state.to;
        }
    }

    async function keys() {
        const doc = await report("keys");
        const action = (label, cls, fn) => el("button", { type: "button", class: cls, onclick: () => fn().catch(App.fail) }, label);
        table("table-keys", [
            { key: "prefix", label: "Prefix" }, { key: "name", label: "Name" },
            { key: "user_id", label: "User" }, { key: "group_id", label: "Team" },
            { key: "role", label: "Role" }, { key: "status", label: "Status" },
            { key: "created_at", label: "Created" }, { key: "last_used_at", label: "Last used" },
            { key: "expires_at", label: "Expires" },
            {
                key: "actions", label: "", render: (k) => k.status !== "active" ? "" : el("span", { class: "noprint" },
                    action("Rotate", "rotate", async () => {
                        if (!window.confirm("Rotate key " + k.prefix + "? The old secret keeps working for an hour.")) return;
                        const nk = await api("POST", "/admin/keys/" + encodeURIComponent(k.prefix) + "/rotate", {});
                        const box = document.getElementById("keys-secret");
                        box.hidden = false;
                        box.textContent = "New secret for " + nk.prefix + " (shown once): " + nk.key;
                        await App.show("keys");
                    }), " ",
                    action("Revoke", "revoke", async () => {
                        if (!window.confirm("Revoke key " + k.prefix + " (" + k.name + ")? It stops working at once.")) return;
                        await api("DELETE", "/admin/keys/" + encodeURIComponent(k.prefix));
                        status("revoked " + k.prefix);
                        await App.show("keys");
                    })),
            },
        ], doc.rows, { report: "keys", params: {} });
        for (const tr of document.querySelectorAll("#table-keys tbody tr"))
            tr.dataset.prefix = tr.firstChild.textContent;
    }

    function quotaKey(q) {
        return { kind: q.subject_kind, subject: q.subject, metric: q.metric, window: q.window };
    }

    async function quotas() {
        const form = document.getElementById("quota-form");
        form.onsubmit = async (ev) => {
            ev.preventDefault();
            const metric = document.getElementById("quota-metric").value;
            const limit = document.getElementById("quota-limit").value.trim();
            try {
                await api("PUT", "/admin/quotas", {
                    kind: document.getElementById("quota-kind").value,
                    subject: document.getElementById("quota-subject").value.trim(),
                    metric, window: document.getElementById("quota-window").value,
                    limit: metric === "usd" ? limit : Number.parseInt(limit, 10),
                });
                await App.show("quotas");
            } catch (e) { App.fail(e); }
        };
        const doc = await report("quotas");
        const amount = (field) => (q) => q.metric === "usd" ? Money.usd(BigInt(q[field])) : String(q[field]);
        const action = (label, cls, fn) => el("button", { type: "button", class: cls, onclick: () => fn().catch(App.fail) }, label);
        table("table-quotas", [
            { key: "subject_kind", label: "Kind" }, { key: "subject", label: "Subject" },
            { key: "metric", label: "Metric" }, { key: "window", label: "Window" },
            { key: "used", label: "Used", render: amount("used") },
            { key: "reserved", label: "Reserved", render: amount("reserved") },
            { key: "limit_value", label: "Limit", render: amount("limit_value") },
            { key: "remaining", label: "Remaining", render: amount("remaining") },
            { key: "resets_at", label: "Resets (UTC)" },
            {
                key: "actions", label: "", render: (q) => el("span", { class: "noprint" },
                    action("Adjust", "adjust", async () => {
                        const by = window.prompt("Change the limit by (" + (q.metric === "usd" ? "dollars, e.g. -12.50" : "a whole number") + "):");
                        if (!by) return;
                        await api("POST", "/admin/quotas/adjust", Object.assign(quotaKey(q),
                            { by: q.metric === "usd" ? by.trim() : Number.parseInt(by, 10) }));
                        await App.show("quotas");
                    }), " ",
                    action("Reset", "reset", async () => {
                        if (!window.confirm("Reset the use of this quota to 0?")) return;
                        await api("POST", "/admin/quotas/reset", quotaKey(q));
                        await App.show("quotas");
                    }), " ",
                    action("Delete", "delete", async () => {
                        if (!window.confirm("Delete this quota?")) return;
                        await api("DELETE", "/admin/quotas", quotaKey(q));
                        await App.show("quotas");
                    })),
            },
        ], doc.rows, { report: "quotas", params: {} });
    }

    async function denials(state) {
        const params = { from: state.from, to: state.to };
        const doc = await report("denials", params);
        chart("chart-denials", {
            type: "bar",
            data: {
                labels: doc.rows.map((r) => r.reason + " (" + r.http_status + ")"),
                datasets: [{ label: "requests refused", backgroundColor: PALETTE[1], data: doc.rows.map((r) => r.requests) }],
            },
        });
        table("table-denials", [{ key: "reason", label: "Reason" }, { key: "http_status", label: "Status" },
            { key: "requests", label: "Requests" }], doc.rows, { report: "denials", params });
    }

    async function models(state) {
        const params = { from: state.from, to: state.to };
        const doc = await report("models", params);
        table("table-models", [
            { key: "provider", label: "Provider" }, { key: "model", label: "Model" },
            { key: "requests", label: "Requests" }, { key: "input_tokens", label: "Input" },
            { key: "output_tokens", label: "Output" }, { key: "cost_usd", label: "Cost", money: true },
            { key: "cost_per_request_usd", label: "Per request", money: true },
            { key: "cost_per_1k_output_usd", label: "Per 1k output", money: true },
            { key: "latency_p50_ms", label: "p50 ms" }, { key: "latency_p95_ms", label: "p95 ms" },
            { key: "latency_p99_ms", label: "p99 ms" }, { key: "ttft_p50_ms", label: "TTFT p50" },
            { key: "ttft_p95_ms", label: "TTFT p95" }, { key: "error_rate", label: "Error rate" },
            { key: "refusal_rate", label: "Refusal rate" },
        ], doc.rows, { report: "models", params });
    }

    async function tools(state) {
        const params = { by: "tool", from: state.from, to: state.to };
        const doc = await report("chargeback", params);
        chart("chart-tools", {
            type: "bar",
            data: {
                labels: doc.rows.map((r) => r.server + "/" + r.tool),
                datasets: [
                    { label: "calls", backgroundColor: PALETTE[0], data: doc.rows.map((r) => r.calls - r.errors) },
                    { label: "not ok", backgroundColor: PALETTE[6], data: doc.rows.map((r) => r.errors) },
                ],
            },
            options: { indexAxis: "y", scales: { x: { stacked: true }, y: { stacked: true } } },
        });
        table("table-tools", [
            { key: "server", label: "Server" }, { key: "tool", label: "Tool" },
            { key: "calls", label: "Calls" }, { key: "errors", label: "Not ok" },
            { key: "bytes_in", label: "Bytes in" }, { key: "bytes_out", label: "Bytes out" },
            { key: "duration_us", label: "Total µs" }, { key: "mean_us", label: "Mean µs" },
        ], doc.rows, { report: "chargeback", params }, Object.assign({ tool: "" }, doc.total));
    }

    return { spend, team, daily, keys, quotas, denials, models, tools };
})();
