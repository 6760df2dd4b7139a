/*
 * money.js — micro-dollars as text. Amounts arrive as integers (cost_micros)
 * and are handled as BigInt, never as floating point: what the page shows is
 * what the report's CSV holds, to the micro-dollar.
 */
"use strict";

const Money = (() => {
    const MICROS = 1000000n;

    function big(micros) {
        return typeof micros === "bigint" ? micros : BigInt(String(micros));
    }

    function group3(digits) {
        return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    }

    /* "$1,234.567890" (six decimals, as the reports' *_usd columns) */
    function usd(micros) {
        let m = big(micros);
        const sign = m < 0n ? "-" : "";
        if (m < 0n) m = -m;
        const whole = (m / MICROS).toString();
        const frac = (m % MICROS).toString().padStart(6, "0");
        return sign + "$" + group3(whole) + "." + frac;
    }

    /* a reports' *_usd string ("12.345678", "-0.000001") as BigInt micro-dollars */
    function fromUsd(text) {
        const m = /^(-?)(\d+)\.(\d{6})$/.exec(String(text));
        if (!m) throw new Error("not a dollar amount: " + text);
        const v = BigInt(m[2]) * MICROS + BigInt(m[3]);
        return m[1] ? -v : v;
    }

    function sum(values) {
        return values.reduce((acc, v) => acc + big(v), 0n);
    }

    /* the change from last to now in percent with two decimals, or "n/a" */
    function change(now, last) {
        const n = big(now), l = big(last);
        if (l === 0n) return "n/a";
        let bp = ((n - l) * 10000n) / l; /* basis points, truncated */
        const sign = bp < 0n ? "-" : "+";
        if (bp < 0n) bp = -bp;
        return sign + (bp / 100n).toString() + "." + (bp % 100n).toString().padStart(2, "0") + " %";
    }

    /* a micro-dollar amount as a chart value: micros stay an exact integer below 2^53 */
    function plot(micros) {
        return Number(big(micros));
    }

    return { usd, fromUsd, sum, change, plot, big };
})();
