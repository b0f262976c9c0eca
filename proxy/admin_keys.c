/*
 * admin_keys: API keys on the admin API (admin.c checks the admin token first). JSON in and out.
 *
 *   POST   /keys                 {"name": "mobile", "plan": "basic"} (both optional)
 *                                -> 201 {"id", "name", "plan", "enabled", "source", "created", "key": "<secret>"}
 *                                   the secret is shown once, here; only its SHA-256 is kept
 *   GET    /keys                 -> 200 {"keys": [{"id", "name", "plan", "enabled", "source", "created"}, ...]}
 *   GET    /keys/{id}            -> 200 the key
 *   POST   /keys/{id}/enable     -> 200 the key
 *   POST   /keys/{id}/disable    -> 200 the key (its requests get 403 at once)
 *   DELETE /keys/{id}            -> 200 {"deleted": "{id}"}
 *   GET    /keys/{id}/usage      -> 200 {"id", "plan", "today": {"date", "used"},
 *                                        "quota": {"limit", "period", "used", "remaining", "period_start", "period_end"}}
 *                                   ("quota" is null when the key's plan has none)
 *
 * Changes are answered once the data store has committed them (gateway/keys.c). Keys from the conf file are listed
 * (source "conf") but cannot be changed here: 409. An unknown id: 404. A bad body: 400.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "proxy/internal.h"

enum { OP_CREATE, OP_CHANGE, OP_DELETE };

static const char *period_name(conf_period_t p)
{
    return p == CONF_PERIOD_WEEK ? "week" : p == CONF_PERIOD_MONTH ? "month" : "day";
}

static json_t *iso_time(int64_t t)
{
    char buf[32];
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *key_json(const conf_t *conf, const gw_key_t *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(k->id));
    json_object_set_new(o, "name", json_string(k->name));
    json_object_set_new(o, "plan", k->plan >= 0 ? json_string(conf->plans[k->plan].name) : json_null());
    json_object_set_new(o, "enabled", json_boolean(atomic_load(&k->enabled)));
    json_object_set_new(o, "source", json_string(k->from_conf ? "conf" : "api"));
    json_object_set_new(o, "created", k->from_conf ? json_null() : iso_time(k->created_s));
    return o;
}

/* Sends a JSON value (taking it) as the answer. */
static int send_value(h2o_req_t *req, int status, const char *reason, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (text == NULL) {
        px_send_error(req, 500, "Internal Server Error", "out of memory");
        return 0;
    }
    size_t len = strlen(text);
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(body, text, len);
    body[len] = '\n';
    free(text);
    px_admin_send_json(req, status, reason, h2o_iovec_init(body, len + 1));
    return 0;
}

static void answer(px_admin_op_t *op, h2o_req_t *req)
{
    px_server_t *srv = op->th->srv;

    if (op->err == ENOENT) {
        px_send_error(req, 404, "Not Found", "No such key");
    } else if (op->err == EPERM) {
        px_send_error(req, 409, "Conflict", "The key is defined in the conf file: change it there");
    } else if (op->err != 0) {
        px_send_error(req, 500, "Internal Server Error", gw_strerror(op->err));
    } else if (op->kind == OP_DELETE) {
        send_value(req, 200, "OK", json_pack("{s:s}", "deleted", op->key->id));
    } else {
        json_t *o = key_json(srv->conf, op->key);
        if (op->kind == OP_CREATE)
            json_object_set_new(o, "key", json_string(op->secret));
        send_value(req, op->kind == OP_CREATE ? 201 : 200, op->kind == OP_CREATE ? "Created" : "OK", o);
    }
}

/* On the data store's writer thread. */
static void on_done(void *data, int err, gw_key_t *key)
{
    px_admin_op_t *op = data;
    op->err = err;
    op->key = key;
    px_admin_op_done(op);
}

static int method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static int not_allowed(h2o_req_t *req, const char *allow)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    px_send_error(req, 405, "Method Not Allowed", "Method not allowed on this admin endpoint");
    return 0;
}

static int create(px_server_t *srv, h2o_req_t *req)
{
    const conf_t *conf = srv->conf;
    json_t *body = NULL;
    json_error_t jerr;
    const char *name = NULL, *plan = NULL;
    int plan_index = -1;
    px_admin_op_t *op;

    if (req->entity.base != NULL && req->entity.len != 0) {
        body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
        if (body == NULL || !json_is_object(body)) {
            json_decref(body);
            px_send_error(req, 400, "Bad Request", "The body must be a JSON object: {\"name\": ..., \"plan\": ...}");
            return 0;
        }
        const char *k;
        json_t *v;
        json_object_foreach(body, k, v)
        {
            if (strcmp(k, "name") == 0 && json_is_string(v) && gw_key_name_is_valid(json_string_value(v), json_string_length(v))) {
                name = json_string_value(v);
            } else if (strcmp(k, "plan") == 0 && json_is_string(v)) {
                plan = json_string_value(v);
            } else if (strcmp(k, "plan") == 0 && json_is_null(v)) {
                plan = NULL;
            } else {
                const char *why = strcmp(k, "name") == 0 ? "\"name\" must be 1 to 64 of A-Z a-z 0-9 . _ -"
                                                         : "Unknown or bad field: the body takes \"name\" and \"plan\"";
                json_decref(body); /* frees k */
                px_send_error(req, 400, "Bad Request", why);
                return 0;
            }
        }
    }
    if (plan != NULL) {
        for (size_t i = 0; i != conf->nplans && plan_index < 0; ++i)
            if (strcmp(conf->plans[i].name, plan) == 0)
                plan_index = (int)i;
        if (plan_index < 0) {
            json_decref(body);
            px_send_error(req, 400, "Bad Request", "No such plan in the conf");
            return 0;
        }
    }
    op = px_admin_op_new(req, answer);
    op->kind = OP_CREATE;
    if (gw_key_create(srv->gw, name, plan_index, op->secret, on_done, op) != 0) {
        px_admin_op_abandon(op);
        px_send_error(req, 503, "Service Unavailable", "The key could not be made (shutting down or out of memory)");
    }
    json_decref(body);
    return 0;
}

static int list(px_server_t *srv, h2o_req_t *req)
{
    size_t n;
    gw_key_t **keys = gw_keys_list(srv->gw, &n);
    json_t *arr = json_array();

    for (size_t i = 0; keys != NULL && i != n; ++i)
        json_array_append_new(arr, key_json(srv->conf, keys[i]));
    free(keys);
    return send_value(req, 200, "OK", json_pack("{s:o}", "keys", arr));
}

static int usage(px_server_t *srv, h2o_req_t *req, gw_key_t *k)
{
    int64_t now = (int64_t)(gw_now_ns() / 1000000000), start, end;
    json_t *o = json_object(), *today = json_object();
    char date[16];
    struct tm tm;
    time_t tt = (time_t)now;

    gmtime_r(&tt, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    json_object_set_new(o, "id", json_string(k->id));
    json_object_set_new(o, "plan", k->plan >= 0 ? json_string(srv->conf->plans[k->plan].name) : json_null());
    json_object_set_new(today, "date", json_string(date));
    json_object_set_new(today, "used", json_integer((json_int_t)gw_quota_used(&k->today, CONF_PERIOD_DAY, now)));
    json_object_set_new(o, "today", today);
    if (k->plan >= 0 && srv->conf->plans[k->plan].quota.limit != 0) {
        const conf_quota_t *q = &srv->conf->plans[k->plan].quota;
        uint64_t used = gw_quota_used(&k->quota, q->period, now);
        gw_period_bounds(q->period, now, &start, &end);
        json_object_set_new(o, "quota",
                            json_pack("{s:I, s:s, s:I, s:I, s:o, s:o}", "limit", (json_int_t)q->limit, "period",
                                      period_name(q->period), "used", (json_int_t)used, "remaining",
                                      (json_int_t)(used < q->limit ? q->limit - used : 0), "period_start", iso_time(start),
                                      "period_end", iso_time(end)));
    } else {
        json_object_set_new(o, "quota", json_null());
    }
    return send_value(req, 200, "OK", o);
}

int px_admin_keys(px_server_t *srv, h2o_req_t *req, h2o_iovec_t path)
{
    const char *id, *slash, *end = path.base + path.len;
    size_t idlen;
    gw_key_t *k;
    px_admin_op_t *op;
    char idz[GW_KEY_ID_MAX + 1];

    if (srv->gw == NULL) {
        px_send_error(req, 404, "Not Found", "API keys are not in use");
        return 0;
    }
    if (path.len == 5 || (path.len == 6 && path.base[5] == '/')) {
        if (method_is(req, "POST"))
            return create(srv, req);
        if (method_is(req, "GET"))
            return list(srv, req);
        return not_allowed(req, "GET, POST");
    }
    id = path.base + 6;
    slash = memchr(id, '/', (size_t)(end - id));
    idlen = (size_t)((slash != NULL ? slash : end) - id);
    if (!gw_key_name_is_valid(id, idlen) || (k = gw_key_by_id(srv->gw, id, idlen)) == NULL) {
        px_send_error(req, 404, "Not Found", "No such key");
        return 0;
    }
    memcpy(idz, id, idlen);
    idz[idlen] = '\0';
    if (slash == NULL) {
        if (method_is(req, "GET"))
            return send_value(req, 200, "OK", key_json(srv->conf, k));
        if (!method_is(req, "DELETE"))
            return not_allowed(req, "GET, DELETE");
        op = px_admin_op_new(req, answer);
        op->kind = OP_DELETE;
        if (gw_key_remove(srv->gw, idz, on_done, op) != 0)
            goto unavailable;
        return 0;
    }
    h2o_iovec_t sub = h2o_iovec_init(slash + 1, (size_t)(end - slash - 1));
    if (h2o_memis(sub.base, sub.len, H2O_STRLIT("usage"))) {
        if (!method_is(req, "GET"))
            return not_allowed(req, "GET");
        return usage(srv, req, k);
    }
    int enable = h2o_memis(sub.base, sub.len, H2O_STRLIT("enable"));
    if (!enable && !h2o_memis(sub.base, sub.len, H2O_STRLIT("disable"))) {
        px_send_error(req, 404, "Not Found", "No such admin endpoint (/keys/{id}, /enable, /disable, /usage)");
        return 0;
    }
    if (!method_is(req, "POST"))
        return not_allowed(req, "POST");
    op = px_admin_op_new(req, answer);
    op->kind = OP_CHANGE;
    if (gw_key_set_enabled(srv->gw, idz, enable, on_done, op) != 0)
        goto unavailable;
    return 0;
unavailable:
    px_admin_op_abandon(op);
    px_send_error(req, 503, "Service Unavailable", "The change could not be queued (shutting down)");
    return 0;
}
