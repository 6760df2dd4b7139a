#!/bin/sh
# Starts Tollgate's FastCGI master with spawn-fcgi, as the unprivileged user
# "tollgate", on the unix socket lighttpd (conf/lighttpd.conf) or Apache
# (conf/apache-tollgate.conf) forwards to. Used by conf/tollgate-fcgi.service;
# also fine by hand. The master forks server.processes workers (the config,
# default 4, each of server.threads request threads, default 256) and replaces
# any that dies; spawn-fcgi starts one master (-F 1), never more. Environment:
#   TOLLGATE_CONFIG    the config           (default /etc/tollgate/tollgate.json)
#   TOLLGATE_SOCKET    the FastCGI socket   (default /run/tollgate/tollgate.sock)
#   TOLLGATE_WEB_GROUP group of the web server, which must reach the socket (www-data)
# Secrets such as ANTHROPIC_API_KEY come from the environment (systemd:
# EnvironmentFile=/etc/tollgate/secrets.env) and are read by "$NAME" in the config.
set -eu
config=${TOLLGATE_CONFIG:-/etc/tollgate/tollgate.json}
socket=${TOLLGATE_SOCKET:-/run/tollgate/tollgate.sock}
web_group=${TOLLGATE_WEB_GROUP:-www-data}
bin=${TOLLGATE_BIN:-/usr/bin/tollgate-fcgi}

"$bin" -c "$config" --check   # refuse a bad config before any worker starts
exec spawn-fcgi -n -s "$socket" -M 0660 -U tollgate -G "$web_group" \
    -u tollgate -g tollgate -F 1 -- "$bin" -c "$config"
