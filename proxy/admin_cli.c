/*
 * admin_cli: `edgeproxy purge` and `edgeproxy keys`, the command-line side of the admin API (POST /cache/purge and
 * /keys). Each reads the admin listener's address, port and token from the conf and makes one blocking HTTP/1.1
 * request (a CLI, not a loop), then prints the API's JSON answer.
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

/*
 * One request to the admin API of the server that runs with conf_file: METHOD target, with a JSON body or none.
 * Prints the answer's body to stdout when it is a 2xx (exit code 0), else the status line and body to stderr (1).
 */
static int admin_call(const char *conf_file, const char *method, const char *target, const char *body, const char *what)
{
    conf_t *conf = NULL;
    char err[1024], req[16384], resp[1 << 20];
    size_t got = 0, blen = body != NULL ? strlen(body) : 0;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd = -1, ret = 1;

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
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: edgeproxy-admin\r\nAuthorization: Bearer %s\r\n%s"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, target, conf->admin.token, body != NULL ? "Content-Type: application/json\r\n" : "", blen,
                     body != NULL ? body : "");
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        fprintf(stderr, "edgeproxy: cannot send the %s request\n", what);
        goto Exit;
    }
    for (ssize_t r; got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0;)
        got += (size_t)r;
    resp[got] = '\0';
    const char *answer = strstr(resp, "\r\n\r\n");
    answer = answer != NULL ? answer + 4 : "";
    if (strncmp(resp, "HTTP/1.1 2", 10) == 0) {
        fputs(answer, stdout);
        ret = 0;
    } else {
        fprintf(stderr, "edgeproxy: %s failed: %.*s\n%s", what, (int)strcspn(resp, "\r\n"), resp, answer);
    }
Exit:
    if (fd != -1)
        close(fd);
    conf_free(conf);
    return ret;
}

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
    int soft = 0, nsel = 0, ch;
    char enc[8192], target[8300];

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
    encode(arg, enc, sizeof(enc));
    snprintf(target, sizeof(target), "/cache/purge?%s=%s%s", what, enc, soft ? "&soft=1" : "");
    return admin_call(conf_file, "POST", target, NULL, "purge");
}

static void keys_usage(FILE *fp)
{
    fprintf(fp, "Usage: edgeproxy keys -c FILE create [--plan PLAN] [--name NAME]\n"
                "       edgeproxy keys -c FILE list\n"
                "       edgeproxy keys -c FILE (show | enable | disable | delete | usage) ID\n"
                "\n"
                "Manages the API keys of the edgeproxy running with FILE, through its admin API (conf key admin).\n"
                "  create   makes a key on PLAN (a plan of the conf; none: no limits) and prints it once, with the\n"
                "           secret in \"key\": only its SHA-256 is stored\n"
                "  list     every key, from the conf and made through the API\n"
                "  show     one key; enable, disable, delete change it (keys of the conf file cannot be changed)\n"
                "  usage    today's requests and the plan's quota: used, remaining, period\n"
                "Prints the API's JSON answer; exits 0 on success, 1 otherwise.\n");
}

/* Writes s as a JSON string (quotes included) into out. */
static void json_quote(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    out[o++] = '"';
    for (; *s != '\0' && o + 8 < cap; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out[o++] = '\\';
        if (c >= 0x20)
            out[o++] = (char)c;
    }
    out[o++] = '"';
    out[o] = '\0';
}

int px_keys_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"conf", required_argument, NULL, 'c'},
                                             {"plan", required_argument, NULL, 'p'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *conf_file = NULL, *plan = NULL, *name = NULL, *cmd;
    char target[512], body[1024], qp[300], qn[300];
    int ch;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            conf_file = optarg;
            break;
        case 'p':
            plan = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
            keys_usage(stdout);
            return 0;
        default:
            keys_usage(stderr);
            return 2;
        }
    }
    if (conf_file == NULL || optind >= argc)
        goto usage;
    cmd = argv[optind];
    if (strcmp(cmd, "create") == 0 || strcmp(cmd, "list") == 0) {
        if (optind + 1 != argc || (strcmp(cmd, "list") == 0 && (plan != NULL || name != NULL)))
            goto usage;
        if (strcmp(cmd, "list") == 0)
            return admin_call(conf_file, "GET", "/keys", NULL, "keys list");
        size_t o = (size_t)snprintf(body, sizeof(body), "{");
        if (plan != NULL) {
            json_quote(plan, qp, sizeof(qp));
            o += (size_t)snprintf(body + o, sizeof(body) - o, "\"plan\":%s", qp);
        }
        if (name != NULL) {
            json_quote(name, qn, sizeof(qn));
            o += (size_t)snprintf(body + o, sizeof(body) - o, "%s\"name\":%s", plan != NULL ? "," : "", qn);
        }
        snprintf(body + o, sizeof(body) - o, "}");
        return admin_call(conf_file, "POST", "/keys", body, "keys create");
    }
    if (optind + 2 != argc || plan != NULL || name != NULL || strlen(argv[optind + 1]) > 64 ||
        strspn(argv[optind + 1], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(argv[optind + 1]))
        goto usage;
    const char *id = argv[optind + 1];
    if (strcmp(cmd, "show") == 0) {
        snprintf(target, sizeof(target), "/keys/%s", id);
        return admin_call(conf_file, "GET", target, NULL, "keys show");
    }
    if (strcmp(cmd, "delete") == 0) {
        snprintf(target, sizeof(target), "/keys/%s", id);
        return admin_call(conf_file, "DELETE", target, NULL, "keys delete");
    }
    if (strcmp(cmd, "enable") == 0 || strcmp(cmd, "disable") == 0 || strcmp(cmd, "usage") == 0) {
        snprintf(target, sizeof(target), "/keys/%s/%s", id, cmd);
        return admin_call(conf_file, strcmp(cmd, "usage") == 0 ? "GET" : "POST", target, NULL, "keys");
    }
usage:
    keys_usage(stderr);
    return 2;
}
