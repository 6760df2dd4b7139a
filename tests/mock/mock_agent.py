#!/usr/bin/env python3
"""Mock of an agent-like backend (an http route's provider) for Tollgate's demo
and tests.

Usage:
    python3 tests/mock/mock_agent.py --port N [--host 127.0.0.1]
                                     [--require-key KEY] [--quiet]

POST /chat with {"message": "..."} answers
{"answer": "...", "echo": <the message as received>, "usage": {"input_tokens": N,
"output_tokens": M}}, so a client can see what the gateway let through (a masked
span, for instance).  Prints exactly one line `READY port=<N>` on stdout once
listening (use --port 0 for a free port); SIGTERM or SIGINT exits with status 0.
See tests/mock/README.md.

Standard library only; runs under Debian's /usr/bin/python3 (3.11).
"""

import sys

from mock_common import BaseHandler, MockError, count_tokens, count_words, parser, serve


def answer_to(message):
    return "The agent read %d words and has nothing to add." % count_words(message)


class Handler(BaseHandler):

    def error_reply(self, err):
        return err.status, {"error": {"message": err.message}}, err.headers

    def route(self, path, body):
        if path != "/chat":
            raise MockError(404, "Not found: %s" % path)
        if self.command != "POST":
            raise MockError(405, "Method not allowed: %s" % self.command)
        key = self.server.require_key
        if key is not None and self.headers.get("authorization") != "Bearer " + key:
            raise MockError(401, "missing or wrong Authorization: Bearer key")
        req = self.json_body(body)
        message = req.get("message")
        if not isinstance(message, str):
            raise MockError(400, "\"message\" must be a string")
        answer = answer_to(message)
        self.send_json(200, {"answer": answer, "echo": message, "usage": {
            "input_tokens": count_tokens([message]),
            "output_tokens": count_words(answer)}})


def main(argv=None):
    args = parser("Mock agent backend (POST /chat)",
                  "answer 401 unless Authorization is 'Bearer KEY'").parse_args(argv)
    return serve(args, Handler)


if __name__ == "__main__":
    sys.exit(main())
