/*
 * config_mask.h — which config values are secrets, and hiding them: what
 * `tollgatectl config show` prints. A secret written "$NAME" (an environment
 * variable's name) is not itself secret and is shown as is.
 */
#ifndef TG_CONFIG_MASK_H
#define TG_CONFIG_MASK_H

#include "common.h"

struct json_t; /* jansson's json_t */

/*
 * Replaces every secret of a parsed config (root, modified in place) by
 * "********": providers.*.api_key, auth.jwt[].keys[].secret, admin.keys[],
 * mcp.session_secret and mcp.servers.*.headers.*, and the passwords inside database.url (URL
 * userinfo, password= keywords and parameters, sslpassword too, quoted or not). Add a field here
 * when the config gains a secret. TG_ERROR when out of memory.
 */
int tg_config_mask(struct json_t *root);

#endif
