/*
 * accesslog: one JSON line per request, written when the response is done:
 *   {"time":"2026-11-22T07:32:03.123Z","request_id":"...","client":"127.0.0.1","method":"GET","host":"example.com",
 *    "path":"/a?b=1","status":200,"bytes":1234,"duration_ms":1.234,"upstream_ms":0.870,"protocol":"HTTP/2"}
 * upstream_ms is null when no origin was contacted. On routes that take API keys "key" names the caller's key by its id
 * (never the key itself); when keys may come in a query parameter (api_keys.query), its value in "path" is written as
 * REDACTED. Each line goes out in one write(2) to a file opened with
 * O_APPEND, as nginx writes its access log; no fsync.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "proxy/internal.h"

#define MAX_FIELD 2048

typedef struct px_accesslog {
    h2o_logger_t super;
    px_server_t *srv;
} px_accesslog_t;

/* Appends a JSON string of at most MAX_FIELD input bytes; buf needs 2 + 6 * MAX_FIELD bytes of room. */
static size_t append_json(char *buf, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (len > MAX_FIELD)
        len = MAX_FIELD;
    buf[o++] = '"';
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(buf + o, "\\u00", 4);
            buf[o + 4] = hex[c >> 4];
            buf[o + 5] = hex[c & 15];
            o += 6;
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    return o;
}

/* From the start of the request to the end of its response (now, when h2o did not stamp the end). */
static double duration_ms(const struct timeval *begin, const struct timeval *end)
{
    struct timeval now;
    if (begin->tv_sec == 0)
        return 0;
    if (end->tv_sec == 0) {
        gettimeofday(&now, NULL);
        end = &now;
    }
    return (double)(end->tv_sec - begin->tv_sec) * 1000.0 + (double)(end->tv_usec - begin->tv_usec) / 1000.0;
}

/* The path with the value of query parameter `name` replaced by REDACTED (into buf, of cap >= len + 1 + 8 * len). */
static h2o_iovec_t redact_param(h2o_iovec_t path, const char *name, char *buf)
{
    const char *q = memchr(path.base, '?', path.len), *end = path.base + path.len, *p;
    size_t nlen = strlen(name), o;

    if (q == NULL)
        return path;
    o = (size_t)(q + 1 - path.base);
    memcpy(buf, path.base, o);
    for (p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *pe = amp != NULL ? amp : end, *eq = memchr(p, '=', (size_t)(pe - p));
        if (eq != NULL && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
            memcpy(buf + o, p, nlen + 1);
            o += nlen + 1;
            memcpy(buf + o, "REDACTED", 8);
            o += 8;
        } else {
            memcpy(buf + o, p, (size_t)(pe - p));
            o += (size_t)(pe - p);
        }
        if (amp != NULL)
            buf[o++] = '&';
        p = pe + 1;
    }
    return h2o_iovec_init(buf, o);
}

static void log_access(h2o_logger_t *_self, h2o_req_t *req)
{
    px_accesslog_t *self = (void *)_self;
    px_req_t *st = px_req_find(req);
    char buf[5 * (2 + 6 * MAX_FIELD) + 512], peer[NI_MAXHOST], when[40];
    size_t o = 0, peerlen;
    struct tm tm;
    time_t sec = req->timestamps.request_begin_at.tv_sec;
    const char *protocol = req->version >= 0x200 ? "HTTP/2" : req->version == 0x100 ? "HTTP/1.0" : "HTTP/1.1";
    h2o_iovec_t host = req->input.authority.base != NULL ? req->input.authority : req->authority;

    peerlen = px_client_ip(req, peer);
    gmtime_r(&sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    o += (size_t)sprintf(buf + o, "{\"time\":\"%s.%03dZ\",\"request_id\":", when,
                         (int)(req->timestamps.request_begin_at.tv_usec / 1000));
    if (st != NULL)
        o += append_json(buf + o, st->request_id.base, st->request_id.len);
    else
        o += (size_t)sprintf(buf + o, "null");
    o += (size_t)sprintf(buf + o, ",\"client\":");
    o += append_json(buf + o, peer, peerlen);
    o += (size_t)sprintf(buf + o, ",\"method\":");
    o += append_json(buf + o, req->input.method.base, req->input.method.len);
    o += (size_t)sprintf(buf + o, ",\"host\":");
    o += append_json(buf + o, host.base, host.len);
    o += (size_t)sprintf(buf + o, ",\"path\":");
    h2o_iovec_t path = req->input.path;
    if (path.len > MAX_FIELD)
        path.len = MAX_FIELD;
    if (self->srv->conf->api_keys.query != NULL)
        path = redact_param(path, self->srv->conf->api_keys.query, h2o_mem_alloc_pool(&req->pool, 9 * path.len + 1));
    o += append_json(buf + o, path.base, path.len);
    if (st != NULL && st->gate != NULL && st->gate->key != NULL) {
        o += (size_t)sprintf(buf + o, ",\"key\":");
        o += append_json(buf + o, st->gate->key->id, strlen(st->gate->key->id));
    }
    o += (size_t)sprintf(buf + o, ",\"status\":%d,\"bytes\":%zu,\"duration_ms\":%.3f,\"upstream_ms\":", req->res.status,
                         req->bytes_sent, duration_ms(&req->timestamps.request_begin_at, &req->timestamps.response_end_at));
    if (st != NULL && st->upstream_ms >= 0)
        o += (size_t)sprintf(buf + o, "%.3f", st->upstream_ms);
    else
        o += (size_t)sprintf(buf + o, "null");
    o += (size_t)sprintf(buf + o, ",\"protocol\":\"%s\"}\n", protocol);

    if (write(self->srv->access_log_fd, buf, o) < 0) {
        /* nothing sensible to do on the loop: the line is lost, as with nginx */
    }
}

h2o_logger_t *px_accesslog_register(px_server_t *srv, h2o_pathconf_t *pathconf)
{
    px_accesslog_t *self = (void *)h2o_create_logger(pathconf, sizeof(*self));
    self->super.log_access = log_access;
    self->srv = srv;
    return &self->super;
}
