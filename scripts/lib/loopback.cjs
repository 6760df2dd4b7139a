// scripts/lib/loopback.cjs — preloaded (node --require) into the demo's MCP
// server (npm's @modelcontextprotocol/server-everything), which listens on
// every interface with no way to choose one: a listen() given only a port (a
// number, a numeric string or {port}) binds 127.0.0.1 instead, so that only
// Tollgate, on the same host, can reach the server.  Not for anything else.
"use strict";
const net = require("net");

const listen = net.Server.prototype.listen;
const isPort = (v) => typeof v === "number" || (typeof v === "string" && /^\d+$/.test(v));

net.Server.prototype.listen = function (...args) {
    if (isPort(args[0]) && (args.length === 1 || typeof args[1] === "function")) {
        args.splice(1, 0, "127.0.0.1");
    } else if (args[0] && typeof args[0] === "object" && !(args[0] instanceof net.Server) &&
               args[0].port !== undefined && args[0].host === undefined && args[0].path === undefined) {
        args[0] = Object.assign({}, args[0], { host: "127.0.0.1" });
    }
    return listen.apply(this, args);
};
