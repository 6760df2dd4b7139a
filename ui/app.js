/*
 * app.js — the dashboard's shell: the admin credential (sessionStorage only),
 * calls to the admin API, the date range, navigation, and tables with their
 * CSV / JSON exports. The views themselves are in views.js.
 */
"use strict";

const App = (() => {
    const KEY = "tollgate.admin_key";
    const state = { view: "spend", from: "", to: "" };

    function credential() {
        return sessionStorage.getItem(KEY);
    }

    class ApiError extends Error {
        constructor(status, message) {
            super(message);
            this.status = status;
        }
    }

    /* one admin API call; JSON answers parsed, text otherwise */
    async function api(method, path, body, asText) {
        const headers = { "x-api-key": credential() || "" };
        const init = { method, headers, cache: "no-store", credentials: "omit" };
        if (body !== undefined) {
            headers["content-type"] = "application/json";
            init.body = JSON.stringify(body);
        }
        const resp = await fetch(path, init);
        const text = await resp.text();
        if (!resp.ok) {
            let message = text;
            try {
                message = JSON.parse(text).error.message;
            } catch (e) { /* not JSON: the text */ }
            if (resp.status === 401) logout("session ended: " + message);
            throw new ApiError(resp.status, message);
        }
        return asText ? text : JSON.parse(text);
    }

    function query(params) {
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries(params || {}))
            if (v !== undefined && v !== null && v !== "") q.set(k, v);
        return q.toString();
    }

    function report(name, params, format) {
        const q = query(Object.assign({}, params, { format: format || "json" }));
        return api("GET", "/admin/reports/" + name + "?" + q, undefined, format === "csv");
    }

    function el(tag, attrs, ...children) {
        const e = document.createElement(tag);
        for (const [k, v] of Object.entries(attrs || {})) {
            if (k === "class") e.className = v;
            else if (k === "text") e.textContent = v;
            else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
            else e.setAttribute(k, v);
        }
        for (const c of children) if (c !== null && c !== undefined) e.append(c);
        return e;
    }

    function download(name, type, text) {
        const url = URL.createObjectURL(new Blob([text], { type }));
        const a = el("a", { href: url, download: name });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
    }

    /*
     * A table of rows under the element id: columns [{key, label, money, render}].
     * money columns show the *_micros integer as dollars. The export buttons fetch
     * the same report as CSV or JSON (source: {report, params}); rows may be a subset
     * (filter) of the report's, the export is the report's.
     */
    function table(id, columns, rows, source, totalRow) {
        const box = document.getElementById(id);
        box.textContent = "";
        const head = el("tr", null, ...columns.map((c) => el("th", { text: c.label })));
        const cell = (c, row) => {
            const v = row[c.key];
            if (c.render) return el("td", null, c.render(row));
            if (c.money) { /* the *_usd string, exact: shown with separators */
                if (v === null || v === undefined) return el("td", { class: "num" });
                const micros = Money.fromUsd(v);
                const td = el("td", { class: "num money", text: Money.usd(micros) });
                td.dataset.micros = micros.toString();
                return td;
            }
            return el("td", { class: typeof v === "number" ? "num" : "", text: v === null || v === undefined ? "" : String(v) });
        };
        const body = rows.map((row) => el("tr", null, ...columns.map((c) => cell(c, row))));
        if (totalRow) body.push(el("tr", { class: "total" }, ...columns.map((c, i) =>
            i === 0 ? el("td", { text: "Total" }) : cell(c, totalRow))));
        const t = el("table", { "data-report": source ? source.report : "" },
            el("thead", null, head), el("tbody", null, ...body));
        box.append(t);
        if (rows.length === 0) box.append(el("p", { class: "empty", text: "No rows in this range." }));
        if (source) {
            const name = source.report + (source.params.from ? "-" + source.params.from + "-" + source.params.to : "");
            const exp = async (fmt) => {
                const text = await report(source.report, source.params, fmt);
                download(name + "." + fmt, fmt === "csv" ? "text/csv" : "application/json", text);
            };
            box.append(el("p", { class: "exports noprint" },
                el("button", { type: "button", class: "export-csv", onclick: () => exp("csv").catch(fail) }, "CSV"),
                " ",
                el("button", { type: "button", class: "export-json", onclick: () => exp("json").catch(fail) }, "JSON")));
        }
        return t;
    }

    const charts = {};
    /* one Chart.js chart per canvas id, replaced on each render */
    function chart(id, config) {
        if (charts[id]) charts[id].destroy();
        config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options || {});
        charts[id] = new Chart(document.getElementById(id), config);
        return charts[id];
    }

    /* a money axis: micro-dollar integers shown as dollars */
    const moneyAxis = { ticks: { callback: (v) => Money.usd(BigInt(Math.round(v))) } };

    function status(text) {
        document.getElementById("status").textContent = text || "";
    }

    function fail(e) {
        status("error: " + (e && e.message ? e.message : String(e)));
        document.body.dataset.state = "error";
    }

    function isoDay(d) {
        return d.toISOString().slice(0, 10);
    }

    function defaultRange() {
        const now = new Date();
        state.to = isoDay(now);
        state.from = isoDay(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)));
    }

    async function show(view) {
        state.view = view;
        for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
        for (const b of document.querySelectorAll("#nav [data-view]"))
            b.classList.toggle("active", b.dataset.view === view);
        document.body.dataset.view = view;
        document.body.dataset.state = "loading";
        status("loading…");
        try {
            await Views[view](state);
            status("");
            document.body.dataset.state = "ready";
        } catch (e) {
            fail(e);
        }
    }

    function loggedIn(yes) {
        document.getElementById("login").hidden = yes;
        document.getElementById("nav").hidden = !yes;
        document.getElementById("range").hidden = !yes;
        if (!yes) for (const s of document.querySelectorAll(".view")) s.hidden = true;
    }

    function logout(message) {
        sessionStorage.removeItem(KEY);
        loggedIn(false);
        document.getElementById("login-error").textContent = message || "";
        document.body.dataset.state = "login";
    }

    async function login(ev) {
        ev.preventDefault();
        const input = document.getElementById("login-key");
        sessionStorage.setItem(KEY, input.value.trim());
        input.value = "";
        try {
            await api("GET", "/admin/reports/keys?format=json"); /* is it an admin credential? */
        } catch (e) {
            logout("sign-in refused: " + e.message);
            return;
        }
        document.getElementById("login-error").textContent = "";
        start();
    }

    function start() {
        loggedIn(true);
        document.getElementById("range-from").value = state.from;
        document.getElementById("range-to").value = state.to;
        show(state.view);
    }

    function init() {
        defaultRange();
        document.getElementById("login-form").addEventListener("submit", login);
        document.getElementById("logout").addEventListener("click", () => logout(""));
        for (const b of document.querySelectorAll("#nav [data-view]"))
            b.addEventListener("click", () => show(b.dataset.view));
        document.getElementById("range-apply").addEventListener("click", () => {
            state.from = document.getElementById("range-from").value;
            state.to = document.getElementById("range-to").value;
            show(state.view);
        });
        if (credential()) start();
        else logout("");
    }

    document.addEventListener("DOMContentLoaded", init);
    return { api, report, table, chart, moneyAxis, el, status, fail, show, state, isoDay };
})();
