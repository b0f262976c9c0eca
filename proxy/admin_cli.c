/*
 * purge_cli: `edgeproxy purge`, the command-line side of the admin API's POST /cache/purge. It reads the admin
 * listener's address, port and token from the conf and makes one blocking HTTP/1.1 request (a CLI, not a loop).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "proxy/proxy.h"

static void purge_usage(FILE *fp)
{
    fprintf(fp, "Usage: edgeproxy purge -c FILE (--url URL | --prefix PREFIX | --tag TAG | --host HOST | --all) [--soft]\n"
                "\n"
                "Purges the cache of the edgeproxy running with FILE, through its admin API (conf key admin).\n"
                "  --url URL        every stored variant of URL (https://example.com/a?b=1 or example.com/a?b=1)\n"
                "  --prefix PREFIX  every stored URL that begins with PREFIX (example.com/static/)\n"
                "  --tag TAG        every object with that surrogate key (Surrogate-Key / Cache-Tag)\n"
                "  --host HOST      every object of HOST\n"
                "  --all            everything\n"
                "  --soft           mark stale instead of deleting (stale-if-error can still use them)\n"
                "Prints the API's JSON answer ({\"purged\": N, ...}); exits 0 on success, 1 otherwise.\n");
}

/* Percent-encodes s for a query value: everything but unreserved characters, '/' and ':'. */
static void encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s != '\0' && o + 4 < cap; ++s) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~/:", c) != NULL) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

int px_purge_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"conf", required_argument, NULL, 'c'}, {"url", required_argument, NULL, 'u'},  {"prefix", required_argument, NULL, 'p'},
        {"tag", required_argument, NULL, 'T'},  {"host", required_argument, NULL, 'H'}, {"all", no_argument, NULL, 'a'},
        {"soft", no_argument, NULL, 's'},       {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    const char *conf_file = NULL, *what = NULL, *arg = "1";
    int soft = 0, nsel = 0, ch, fd = -1, ret = 1;
    conf_t *conf = NULL;
    char err[1024], enc[8192], req[10240], resp[65536];
    size_t got = 0;
    struct sockaddr_storage ss;
    socklen_t sslen;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            conf_file = optarg;
            break;
        case 'u':
        case 'p':
        case 'T':
        case 'H':
            what = ch == 'u' ? "url" : ch == 'p' ? "prefix" : ch == 'T' ? "tag" : "host";
            arg = optarg;
            ++nsel;
            break;
        case 'a':
            what = "all";
            arg = "1";
            ++nsel;
            break;
        case 's':
            soft = 1;
            break;
        case 'h':
            purge_usage(stdout);
            return 0;
        default:
            purge_usage(stderr);
            return 2;
        }
    }
    if (conf_file == NULL || nsel != 1 || optind != argc) {
        purge_usage(stderr);
        return 2;
    }
    if (conf_load(conf_file, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "edgeproxy: %s\n", err);
        return 1;
    }
    if (!conf->admin.enabled) {
        fprintf(stderr, "edgeproxy: %s: no admin listener in the conf (add admin: {port, token})\n", conf_file);
        goto Exit;
    }
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, conf->admin.address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(conf->admin.port);
        sslen = sizeof(struct sockaddr_in);
    } else {
        inet_pton(AF_INET6, conf->admin.address, &((struct sockaddr_in6 *)&ss)->sin6_addr);
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(conf->admin.port);
        sslen = sizeof(struct sockaddr_in6);
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 || connect(fd, (void *)&ss, sslen) != 0) {
        fprintf(stderr, "edgeproxy: cannot reach the admin API at %s port %u: %s\n", conf->admin.address,
                (unsigned)conf->admin.port, strerror(errno));
        goto Exit;
    }
    encode(arg, enc, sizeof(enc));
    int n = snprintf(req, sizeof(req),
                     "POST /cache/purge?%s=%s%s HTTP/1.1\r\nHost: edgeproxy-admin\r\nAuthorization: Bearer %s\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n",
                     what, enc, soft ? "&soft=1" : "", conf->admin.token);
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        fprintf(stderr, "edgeproxy: cannot send the purge request\n");
        goto Exit;
    }
    for (ssize_t r; got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0;)
        got += (size_t)r;
    resp[got] = '\0';
    const char *body = strstr(resp, "\r\n\r\n");
    body = body != NULL ? body + 4 : "";
    if (strncmp(resp, "HTTP/1.1 200", 12) == 0) {
        fputs(body, stdout);
        ret = 0;
    } else {
        fprintf(stderr, "edgeproxy: purge failed: %.*s\n%s", (int)strcspn(resp, "\r\n"), resp, body);
    }
Exit:
    if (fd != -1)
        close(fd);
    conf_free(conf);
    return ret;
}
