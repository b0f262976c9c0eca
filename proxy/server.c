/*
 * server: listeners, worker threads and their event loops, and the shutdown.
 *
 * Boot (main thread): router, origins, SSL contexts and listening sockets are made first, so every error is reported
 * before the first request. Then N worker threads start; each owns an h2o evloop and context, and a dup() of every
 * listening socket (h2o's own model: the kernel hands each new connection to whichever loop accepts it first).
 *
 * Shutdown: SIGTERM and SIGINT are blocked in every thread (from the start of px_server_create, before the store
 * writers' threads start) and taken by sigwait() in the main thread, which wakes each loop through an
 * h2o_multithread receiver. Each loop closes its listeners, asks h2o to wind connections down (GOAWAY on HTTP/2,
 * "connection: close" on the next HTTP/1 response), and runs until its in-flight requests are done or
 * shutdown_timeout passes. Then the process exits 0. SIGHUP, taken the same way, reloads the routes' JWKS files
 * (gateway.c) and the Lua function files (function.c); it never stops the server.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "cache/cache.h"
#include "proxy/internal.h"

static int mkdir_p(const char *dir)
{
    char buf[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, dir, len + 1);
    for (char *p = buf + 1; *p != '\0'; ++p) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Drops what a pathconf borrowed from the main one (px_server_setup_pathconf), so that disposing it frees only its own
 * filters and loggers (h2o's chunked filter, made with every pathconf). */
static void unborrow(px_server_t *srv, h2o_pathconf_t *pathconf)
{
    size_t i, o;
    for (i = o = 0; i != pathconf->filters.size; ++i)
        if (pathconf->filters.entries[i] != srv->respond_filter)
            pathconf->filters.entries[o++] = pathconf->filters.entries[i];
    pathconf->filters.size = o;
    for (i = o = 0; i != pathconf->loggers.size; ++i)
        if (pathconf->loggers.entries[i] != srv->access_logger)
            pathconf->loggers.entries[o++] = pathconf->loggers.entries[i];
    pathconf->loggers.size = o;
}

void px_server_setup_pathconf(px_server_t *srv, h2o_pathconf_t *pathconf)
{
    if (srv->respond_filter == NULL) {
        srv->respond_filter = px_respond_register(pathconf);
    } else {
        h2o_vector_reserve(NULL, &pathconf->filters, pathconf->filters.size + 1);
        pathconf->filters.entries[pathconf->filters.size++] = srv->respond_filter;
    }
    if (srv->access_log_fd == -1)
        return;
    if (srv->access_logger == NULL) {
        srv->access_logger = px_accesslog_register(srv, pathconf);
    } else {
        h2o_vector_reserve(NULL, &pathconf->loggers, pathconf->loggers.size + 1);
        pathconf->loggers.entries[pathconf->loggers.size++] = srv->access_logger;
    }
}

static int open_listener(const conf_t *conf, const conf_listener_t *cl, px_listener_t *l, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int one = 1, family;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, cl->address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(cl->port);
        sslen = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, cl->address, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(cl->port);
        sslen = sizeof(struct sockaddr_in6);
    } else {
        snprintf(err, errlen, "bad listen address %s", cl->address);
        return -1;
    }
    if ((l->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 || bind(l->fd, (void *)&ss, sslen) != 0 ||
        listen(l->fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s port %u: %s", cl->address, (unsigned)cl->port, strerror(errno));
        return -1;
    }
    fcntl(l->fd, F_SETFL, O_NONBLOCK);
    getsockname(l->fd, (void *)&ss, &sslen);
    snprintf(l->url, sizeof(l->url), family == AF_INET6 ? "%s://[%s]:%u" : "%s://%s:%u", cl->tls ? "https" : "http", cl->address,
             (unsigned)ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port));
    if (cl->tls && px_tls_listener_ctx(conf, cl, &l->ssl_ctx, err, errlen) != 0)
        return -1;
    return 0;
}

static int setup_origin(px_server_t *srv, px_origin_t *origin, char *err, size_t errlen)
{
    const conf_origin_t *o = &origin->route->origin;

    switch (o->kind) {
    case CONF_ORIGIN_URL:
        return px_upstream_init(srv, origin, err, errlen);
    case CONF_ORIGIN_STATIC: {
        const char *index[17];
        size_t i;
        struct stat st;
        if (stat(o->static_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s:%u: static directory %s: %s", srv->conf->file, origin->route->line, o->static_dir,
                     errno != 0 ? strerror(errno) : "not a directory");
            return -1;
        }
        for (i = 0; i != o->nindex && i != 16; ++i)
            index[i] = o->index[i];
        index[i] = NULL;
        h2o_config_init_pathconf(&origin->pathconf, &srv->globalconf, origin->route->path, srv->globalconf.mimemap);
        origin->file_handler = (h2o_handler_t *)h2o_file_register(&origin->pathconf, o->static_dir, index, NULL, 0);
        px_server_setup_pathconf(srv, &origin->pathconf);
        return 0;
    }
    case CONF_ORIGIN_FUNCTION: /* px_functions_init */
    case CONF_ORIGIN_STORE:    /* the store is opened above */
        return 0;
    default:
        snprintf(err, errlen, "%s:%u: route has no origin", srv->conf->file, origin->route->line);
        return -1;
    }
}

/* The conf's schema validation rules as the store takes them (store/store.h): malloc'ed (h2o_mem_alloc: no silent
 * loss of rules), freed by store_rules_free; the strings stay the conf's. NULL when there are none. */
static store_table_rules_t *store_rules_of(const conf_t *conf, size_t *n)
{
    store_table_rules_t *t = conf->store.ntables != 0 ? h2o_mem_alloc(conf->store.ntables * sizeof(*t)) : NULL;
    *n = conf->store.ntables;
    for (size_t i = 0; i != conf->store.ntables; ++i) {
        const conf_store_table_t *ct = &conf->store.tables[i];
        store_attr_rule_t *a = h2o_mem_alloc((ct->nattrs + 1) * sizeof(*a));
        t[i] = (store_table_rules_t){.table = ct->name, .attrs = a, .nattrs = ct->nattrs};
        for (size_t j = 0; j != ct->nattrs; ++j) {
            const conf_store_attr_t *ca = &ct->attrs[j];
            a[j] = (store_attr_rule_t){.name = ca->name,
                                       .type = ca->type,
                                       .required = ca->required,
                                       .min = ca->min,
                                       .max = ca->max,
                                       .min_length = ca->min_length,
                                       .max_length = ca->max_length,
                                       .enums = (const char *const *)ca->enums,
                                       .nenums = ca->nenums,
                                       .pattern = ca->pattern};
        }
    }
    return t;
}

static void store_rules_free(store_table_rules_t *t, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        free((void *)t[i].attrs);
    free(t);
}

/* Opens the item store with the conf's path, size and rules. */
static int open_store(px_server_t *srv, const conf_t *conf, char *err, size_t errlen)
{
    size_t nrules;
    store_table_rules_t *rules = store_rules_of(conf, &nrules);
    store_options_t sopts = {.dir = conf->store.path, .map_size = conf->store.max_size, .rules = rules, .nrules = nrules};
    int rc = store_open(&srv->store, &sopts, err, errlen);
    store_rules_free(rules, nrules);
    return rc;
}

int px_check(const conf_t *conf, char *err, size_t errlen)
{
    size_t nrules;
    store_table_rules_t *rules = store_rules_of(conf, &nrules);
    int rc = store_rules_check(rules, nrules, err, errlen);
    store_rules_free(rules, nrules);
    return rc != 0 || px_gateway_check(conf, err, errlen) != 0 || px_functions_check(conf, err, errlen) != 0 ? -1 : 0;
}

/* The signals the main thread takes with sigwait(): blocked before any thread starts (the store writers start in
 * px_server_create), so that none of them can be handed to a thread that would die of it. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

int px_server_create(px_server_t **out, const conf_t *conf, char *err, size_t errlen)
{
    px_server_t *srv = h2o_mem_alloc(sizeof(*srv));
    h2o_hostconf_t *hostconf;
    uint64_t max_body = 0;
    size_t i;
    sigset_t set;

    block_signals(&set);
    memset(srv, 0, sizeof(*srv));
    srv->conf = conf;
    srv->access_log_fd = -1;
    *out = srv;
    err[0] = '\0';

    if (px_router_create(&srv->router, conf) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (mkdir_p(conf->data_dir) != 0) {
        snprintf(err, errlen, "cannot create data_dir %s: %s", conf->data_dir, strerror(errno));
        return -1;
    }
    if (conf->access_log.enabled) {
        if (strcmp(conf->access_log.path, "-") == 0)
            srv->access_log_fd = dup(STDOUT_FILENO);
        else
            srv->access_log_fd = open(conf->access_log.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (srv->access_log_fd == -1) {
            snprintf(err, errlen, "cannot open the access log %s: %s", conf->access_log.path, strerror(errno));
            return -1;
        }
    }

    h2o_config_init(&srv->globalconf);
    srv->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("edgeproxy"));
    srv->globalconf.http1.req_timeout = conf->limits.idle_timeout_ms;
    srv->globalconf.http2.idle_timeout = conf->limits.idle_timeout_ms;
    srv->nroutes = px_router_nroutes(srv->router);
    for (i = 0; i != srv->nroutes; ++i)
        if (px_router_route(srv->router, i)->max_body_size > max_body)
            max_body = px_router_route(srv->router, i)->max_body_size;
    /*
     * The hard cap, in h2o: twice the largest route limit (at most 1 GiB). A body up to the cap is read whole and the
     * handler answers 413 when it is over its route's limit. Past the cap h2o stops reading: HTTP/1 gets 413 at once
     * and the connection closes (with a lingering close, linger.c), HTTP/2 gets RST_STREAM(REFUSED_STREAM), because
     * libh2o 2.2.5 buffers HTTP/2 bodies before any handler runs and has no way to answer them early.
     */
    srv->globalconf.max_request_entity_size = px_body_hard_cap(max_body);

    srv->hostconf = hostconf = h2o_config_register_host(&srv->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    srv->pathconf = h2o_config_register_path(hostconf, "/", 0);
    px_handler_register(srv, srv->pathconf);
    px_server_setup_pathconf(srv, srv->pathconf);
    px_server_setup_pathconf(srv, &hostconf->fallback_path); /* h2o's own early errors (413 on Content-Length, ...) */

    for (i = 0; i != srv->nroutes; ++i) {
        if (px_router_route(srv->router, i)->cache.enabled) {
            cache_store_options_t opts = {.max_size = conf->cache.max_size, .max_object_size = conf->cache.max_object_size};
            if (cache_store_open(conf->cache.path, &opts, &srv->cache_store, err, errlen) != 0)
                return -1;
            break;
        }
    }

    for (i = 0; i != srv->nroutes; ++i) {
        const conf_route_t *r = px_router_route(srv->router, i);
        /* a store route, or Lua (functions and hooks have edge.store) */
        if (r->origin.kind == CONF_ORIGIN_STORE || r->origin.kind == CONF_ORIGIN_FUNCTION || r->hooks.request_file != NULL ||
            r->hooks.response_file != NULL) {
            if (open_store(srv, conf, err, errlen) != 0)
                return -1;
            break;
        }
    }

    if (px_gateway_init(srv, err, errlen) != 0)
        return -1;

    srv->origins = h2o_mem_alloc(sizeof(*srv->origins) * (srv->nroutes + 1));
    memset(srv->origins, 0, sizeof(*srv->origins) * (srv->nroutes + 1));
    for (i = 0; i != srv->nroutes; ++i) {
        srv->origins[i].route = px_router_route(srv->router, i);
        errno = 0;
        if (setup_origin(srv, srv->origins + i, err, errlen) != 0)
            return -1;
    }
    if (px_functions_init(srv, err, errlen) != 0 || px_lua_init(srv, err, errlen) != 0)
        return -1;

    srv->nlisteners = conf->nlisteners + (conf->admin.enabled ? 1 : 0);
    srv->listeners = h2o_mem_alloc(sizeof(*srv->listeners) * srv->nlisteners);
    for (i = 0; i != srv->nlisteners; ++i)
        srv->listeners[i] = (px_listener_t){.fd = -1};
    for (i = 0; i != conf->nlisteners; ++i)
        if (open_listener(conf, conf->listeners + i, srv->listeners + i, err, errlen) != 0)
            return -1;
    if (conf->admin.enabled) {
        /* the admin API: its own listener and host, the same threads */
        conf_listener_t al = {.address = conf->admin.address, .port = conf->admin.port};
        h2o_hostconf_t *ah;
        h2o_pathconf_t *ap;
        if (open_listener(conf, &al, srv->listeners + conf->nlisteners, err, errlen) != 0)
            return -1;
        srv->listeners[conf->nlisteners].admin = 1;
        h2o_config_init(&srv->admin_globalconf);
        srv->has_admin = 1;
        ah = h2o_config_register_host(&srv->admin_globalconf, h2o_iovec_init(H2O_STRLIT("edgeproxy-admin")), 65535);
        ap = h2o_config_register_path(ah, "/", 0);
        px_admin_register(srv, ap);
        px_server_setup_pathconf(srv, ap);
        px_server_setup_pathconf(srv, &ah->fallback_path);
    }
    return 0;
}

static void on_conn_close(void *data)
{
    px_thread_t *th = data;
    --th->nconns;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    px_thread_t *th;
    h2o_socket_t *sock;

    if (err != NULL)
        return;
    th = H2O_STRUCT_FROM_MEMBER(px_thread_t, ctx, ((h2o_accept_ctx_t *)listener->data)->ctx);
    for (int i = 0; i != 16 && (sock = h2o_evloop_socket_accept(listener)) != NULL; ++i) {
        ++th->nconns;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = th;
        h2o_accept(listener->data, sock);
    }
}

static void begin_shutdown(px_thread_t *th)
{
    for (size_t i = 0; i != th->srv->nlisteners; ++i) {
        if (th->listen_socks[i] != NULL) {
            h2o_socket_read_stop(th->listen_socks[i]);
            h2o_socket_close(th->listen_socks[i]);
            th->listen_socks[i] = NULL;
        }
    }
    h2o_context_request_shutdown(&th->ctx);
}

static void on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    (void)messages;
}

static void *thread_main(void *arg)
{
    px_thread_t *th = arg;
    px_server_t *srv = th->srv;
    uint64_t deadline;
    size_t i;

    h2o_context_init(&th->ctx, h2o_evloop_create(), &srv->globalconf);
    for (i = 0; i != srv->nroutes; ++i)
        if (srv->origins[i].route->origin.kind == CONF_ORIGIN_STATIC)
            h2o_context_init_pathconf_context(&th->ctx, &srv->origins[i].pathconf);
    px_upstream_init_thread(th);
    px_linger_init_thread(th);
    if (px_thread_init_random(th) != 0)
        h2o_fatal("cannot seed the request-id generator");
    px_functions_init_thread(th);
    px_lua_init_thread(th);
    h2o_multithread_register_receiver(th->ctx.queue, &th->wake, on_wake);
    px_fill_init_thread(th);
    h2o_multithread_register_receiver(th->ctx.queue, &th->admin_receiver, px_admin_on_messages);
    h2o_multithread_register_receiver(th->ctx.queue, &th->store_receiver, px_dynamo_on_messages);
    /* no thread accepts (whose requests may message the others: purges, store answers) and the main thread does not
     * say ready (or wake the threads at a SIGTERM) until every thread's receivers are registered */
    pthread_barrier_wait(&srv->started);

    for (i = 0; i != srv->nlisteners; ++i) {
        h2o_socket_t *sock = th->listen_socks[i]; /* created by the main thread's dup(); see px_server_run */
        th->accept_ctxs[i] =
            (h2o_accept_ctx_t){&th->ctx, srv->listeners[i].admin ? srv->admin_globalconf.hosts : srv->globalconf.hosts,
                               srv->listeners[i].ssl_ctx, 0, NULL};
        sock = h2o_evloop_socket_create(th->ctx.loop, (int)(intptr_t)sock, H2O_SOCKET_FLAG_DONT_READ);
        sock->data = th->accept_ctxs + i;
        th->listen_socks[i] = sock;
        h2o_socket_read_start(sock, on_accept);
    }

    while (!atomic_load(&srv->stopping))
        h2o_evloop_run(th->ctx.loop, INT32_MAX);

    begin_shutdown(th);
    deadline = h2o_now(th->ctx.loop) + srv->conf->shutdown_timeout_ms;
    while (th->inflight != 0 && h2o_now(th->ctx.loop) < deadline)
        h2o_evloop_run(th->ctx.loop, 50);
    /* let the last responses leave the socket buffers */
    for (int spin = 0; spin != 4 && th->nconns != 0; ++spin)
        h2o_evloop_run(th->ctx.loop, 10);
    px_linger_dispose_thread(th);
    px_lua_dispose_thread(th);
    px_functions_dispose_thread(th);
    return NULL;
}

int px_server_run(px_server_t *srv)
{
    sigset_t set;
    size_t i, j;
    int sig;

    signal(SIGPIPE, SIG_IGN);
    block_signals(&set); /* already blocked by px_server_create; inherited by the threads: only sigwait() sees them */

    srv->nthreads = srv->conf->threads;
    srv->threads = h2o_mem_alloc(sizeof(*srv->threads) * srv->nthreads);
    memset(srv->threads, 0, sizeof(*srv->threads) * srv->nthreads);
    for (i = 0; i != srv->nthreads; ++i) {
        px_thread_t *th = srv->threads + i;
        th->srv = srv;
        th->idx = i;
        th->listen_socks = h2o_mem_alloc(sizeof(*th->listen_socks) * srv->nlisteners);
        th->accept_ctxs = h2o_mem_alloc(sizeof(*th->accept_ctxs) * srv->nlisteners);
        /* each loop owns (and closes) its own descriptor of every listening socket; pass the fd through the slot */
        for (j = 0; j != srv->nlisteners; ++j)
            th->listen_socks[j] = (h2o_socket_t *)(intptr_t)dup(srv->listeners[j].fd);
    }
    /* close our own copies, so the port stops accepting once the loops close theirs (LIBH2O_NOTES 3) */
    for (j = 0; j != srv->nlisteners; ++j) {
        close(srv->listeners[j].fd);
        srv->listeners[j].fd = -1;
    }
    if (pthread_barrier_init(&srv->started, NULL, (unsigned)srv->nthreads + 1) != 0)
        h2o_fatal("pthread_barrier_init failed");
    for (i = 0; i != srv->nthreads; ++i) {
        char name[16];
        if (pthread_create(&srv->threads[i].tid, NULL, thread_main, srv->threads + i) != 0)
            h2o_fatal("pthread_create failed");
        snprintf(name, sizeof(name), "edge-worker-%zu", i % 1000);
        pthread_setname_np(srv->threads[i].tid, name); /* for top -H, perf and the tests */
    }
    pthread_barrier_wait(&srv->started);

    for (j = 0; j != srv->nlisteners; ++j)
        fprintf(stderr, srv->listeners[j].admin ? "edgeproxy: admin API on %s\n" : "edgeproxy: listening on %s\n",
                srv->listeners[j].url);
    fprintf(stderr, "edgeproxy: ready (%zu threads)\n", srv->nthreads);

    do {
        if (sigwait(&set, &sig) != 0)
            sig = 0;
        if (sig == SIGHUP) {
            px_gateway_reload(srv);
            px_functions_reload(srv);
        }
    } while (sig != SIGTERM && sig != SIGINT);
    fprintf(stderr, "edgeproxy: %s received, finishing in-flight requests (up to %llu ms)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            (unsigned long long)srv->conf->shutdown_timeout_ms);

    atomic_store(&srv->stopping, 1);
    for (i = 0; i != srv->nthreads; ++i)
        h2o_multithread_send_message(&srv->threads[i].wake, NULL);
    for (i = 0; i != srv->nthreads; ++i)
        pthread_join(srv->threads[i].tid, NULL);
    pthread_barrier_destroy(&srv->started); /* every thread is past it */
    cache_store_close(srv->cache_store);    /* commits what the fills queued */
    srv->cache_store = NULL;
    store_close(srv->store); /* commits the writes queued (their answers go nowhere: the loops have ended) */
    srv->store = NULL;
    gw_close(srv->gw); /* writes the last quota counts */
    srv->gw = NULL;
    fprintf(stderr, "edgeproxy: stopped\n");
    return 0;
}

void px_server_destroy(px_server_t *srv)
{
    size_t i;

    if (srv == NULL)
        return;
    if (srv->listeners != NULL) {
        for (i = 0; i != srv->nlisteners; ++i) {
            if (srv->listeners[i].fd != -1)
                close(srv->listeners[i].fd);
            if (srv->listeners[i].ssl_ctx != NULL)
                SSL_CTX_free(srv->listeners[i].ssl_ctx);
        }
        free(srv->listeners);
    }
    if (srv->origins != NULL) {
        for (i = 0; i != srv->nroutes; ++i) {
            px_origin_t *o = srv->origins + i;
            if (o->route != NULL && o->route->origin.kind == CONF_ORIGIN_URL && o->authority.base != NULL)
                px_upstream_dispose(o);
            else if (o->file_handler != NULL) {
                unborrow(srv, &o->pathconf);
                h2o_config_dispose_pathconf(&o->pathconf);
            }
        }
        free(srv->origins);
    }
    if (srv->threads != NULL) {
        for (i = 0; i != srv->nthreads; ++i) {
            free(srv->threads[i].listen_socks);
            free(srv->threads[i].accept_ctxs);
        }
        free(srv->threads);
    }
    if (srv->pathconf != NULL) {
        unborrow(srv, &srv->hostconf->fallback_path);
        h2o_config_dispose(&srv->globalconf);
    }
    if (srv->has_admin) {
        h2o_hostconf_t *ah = srv->admin_globalconf.hosts[0];
        unborrow(srv, &ah->fallback_path);
        unborrow(srv, &ah->paths.entries[0]);
        h2o_config_dispose(&srv->admin_globalconf);
    }
    px_gateway_dispose(srv);
    px_functions_dispose(srv);
    px_lua_dispose(srv);
    if (srv->access_log_fd != -1)
        close(srv->access_log_fd);
    cache_store_close(srv->cache_store);
    store_close(srv->store);
    px_router_free(srv->router);
    free(srv);
}
