/*
 * edgeproxy: command line, conf, server. Everything else lives in the modules.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "conf/conf.h"
#include "proxy/proxy.h"

/* Kept in a global so that what the worker threads still reference at exit stays reachable. */
static conf_t *conf;
static px_server_t *server;

static void usage(FILE *fp)
{
    fprintf(fp, "Usage: edgeproxy [-t] -c FILE\n"
                "       edgeproxy purge -c FILE (--url URL | --prefix PREFIX | --tag TAG | --host HOST | --all) [--soft]\n"
                "       edgeproxy keys -c FILE (create [--plan PLAN] [--name NAME] | list | show ID | enable ID |\n"
                "                               disable ID | delete ID | usage ID)\n"
                "\n"
                "An edge caching reverse proxy with function hooks.\n"
                "\n"
                "Options:\n"
                "  -c, --conf FILE   the YAML configuration file (see conf/edge.yaml and README.md)\n"
                "  -t, --test        check the configuration, its JWKS and Lua files and item store rules, and exit:\n"
                "                    0 if valid, 1 if not\n"
                "  -h, --help        print this help and exit\n"
                "  -v, --version     print the version and exit\n"
                "\n"
                "Signals: SIGTERM or SIGINT stop accepting connections, let in-flight requests finish\n"
                "(up to shutdown_timeout) and exit 0. SIGHUP reloads the routes' JWKS files and Lua files.\n"
                "\n"
                "edgeproxy purge and edgeproxy keys talk to a running edgeproxy through its admin API (conf key\n"
                "admin): purge its cache, or make and manage API keys; see edgeproxy purge --help and keys --help.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"conf", required_argument, NULL, 'c'},
                                             {"test", no_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'v'},
                                             {NULL, 0, NULL, 0}};
    const char *conf_file = NULL;
    int test_only = 0, ch, ret;
    char err[1024];

    if (argc >= 2 && strcmp(argv[1], "purge") == 0)
        return px_purge_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "keys") == 0)
        return px_keys_main(argc - 1, argv + 1);

    while ((ch = getopt_long(argc, argv, "c:thv", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            conf_file = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'v':
            printf("edgeproxy %s\n", EDGEPROXY_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (conf_file == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }

    if (conf_load(conf_file, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "edgeproxy: %s\n", err);
        return 1;
    }
    if (test_only) {
        if (px_check(conf, err, sizeof(err)) != 0) {
            fprintf(stderr, "edgeproxy: %s\n", err);
            conf_free(conf);
            return 1;
        }
        printf("edgeproxy: %s: the configuration is valid\n", conf_file);
        conf_free(conf);
        return 0;
    }
    if (px_server_create(&server, conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "edgeproxy: %s\n", err);
        px_server_destroy(server);
        conf_free(conf);
        return 1;
    }
    ret = px_server_run(server);
    /* the worker threads have stopped; the process ends here and the kernel reclaims the rest */
    return ret;
}
