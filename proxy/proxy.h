/*
 * proxy: the edgeproxy server. Listeners (plain and TLS with SNI and ALPN), worker threads each running its own h2o
 * event loop, the router, the gateway stage (API keys, JWT, throttles, quotas, CORS; with gateway/), the origins
 * (HTTP(S) upstreams, static files, Lua functions with hooks/, the item store's DynamoDB API with store/), the cache on routes that
 * ask for it (with cache/), the admin API, JSON errors, request ids and the access log. main.c only parses the command line, loads
 * the conf and calls these.
 *
 * Ownership: px_server_create() borrows `conf`, which must outlive the server. The server owns everything else it
 * creates (sockets, SSL contexts, threads, the access log file, the cache store, the item store, the key registry, the Lua VMs) and
 * releases it in px_server_destroy().
 */
#ifndef EDGEPROXY_PROXY_H
#define EDGEPROXY_PROXY_H

#include <stddef.h>
#include "conf/conf.h"

typedef struct px_server px_server_t;

/*
 * Prepares everything that can fail before serving: data_dir, certificates (a self-signed one is generated when a TLS
 * listener names none), the access log, listening sockets (bound and listening when this returns, so clients may
 * connect), and the origins. Returns 0, or -1 with a one-line message in err.
 */
int px_server_create(px_server_t **out, const conf_t *conf, char *err, size_t errlen);

/*
 * Starts the worker threads and serves until SIGTERM or SIGINT, then stops accepting, lets in-flight requests finish
 * for up to conf->shutdown_timeout_ms and returns 0. Prints "edgeproxy: listening on URL" per listener,
 * "edgeproxy: admin API on URL" for the admin listener and
 * "edgeproxy: ready" to standard error once serving. Must be called from the main thread with no other threads started.
 */
int px_server_run(px_server_t *srv);

/*
 * What `edgeproxy -t` checks beyond the conf itself: the files only the server reads (the routes' JWKS files, and the
 * Lua function files, which must compile and run their top level). Returns
 * 0, or -1 with the message the server would stop with.
 */
int px_check(const conf_t *conf, char *err, size_t errlen);

/* Releases the server. NULL is allowed. */
void px_server_destroy(px_server_t *srv);

/* `edgeproxy purge ...`: argv[0] is "purge". Purges through the admin API of the conf's server; returns the exit code. */
int px_purge_main(int argc, char **argv);
/* `edgeproxy keys ...`: argv[0] is "keys". Manages API keys through the admin API; returns the exit code. */
int px_keys_main(int argc, char **argv);

#endif
