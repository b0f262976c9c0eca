/*
 * Unit tests of gateway/keys.c: the API-key registry over a real LMDB environment in a fresh mkdtemp() directory.
 * The conf is built by hand (two plans, two conf keys), so these tests do not depend on the YAML loader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <mbedtls/sha256.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "gateway/gateway.h"

typedef struct fixture {
    char dir[64];
    conf_t conf;
    conf_plan_t plans[2];
    conf_plan_override_t overrides[1];
    conf_key_t keys[2];
} fixture_t;

typedef struct done {
    sem_t sem;
    int err;
    gw_key_t *key;
} done_t;

static void on_done(void *data, int err, gw_key_t *key)
{
    done_t *d = data;
    d->err = err;
    d->key = key;
    sem_post(&d->sem);
}

static void digest(const char *secret, uint8_t out[32])
{
    mbedtls_sha256_ret((const unsigned char *)secret, strlen(secret), out, 0);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/gwkeys-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->plans[0] = (conf_plan_t){.name = "basic", .rate = {1, 100, 1000, 50}, .quota = {1000, CONF_PERIOD_DAY}};
    f->overrides[0] = (conf_plan_override_t){.path = "/search", .rate = {1, 1, 1000, 1}};
    f->plans[1] = (conf_plan_t){.name = "gold", .noverrides = 1, .overrides = f->overrides};
    f->keys[0] = (conf_key_t){.name = "demo", .plan = 0, .enabled = 1};
    digest("demo-secret", f->keys[0].sha256);
    f->keys[1] = (conf_key_t){.name = "off", .plan = -1, .enabled = 0};
    digest("off-secret", f->keys[1].sha256);
    f->conf.nplans = 2;
    f->conf.plans = f->plans;
    f->conf.nkeys = 2;
    f->conf.keys = f->keys;
    *state = f;
    return 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static gw_t *open_gw(fixture_t *f)
{
    char err[256];
    gw_t *gw = NULL;
    int rc = gw_open(&gw, &f->conf, f->dir, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "gw_open: %s\n", err);
    assert_int_equal(rc, 0);
    return gw;
}

static void test_conf_keys(void **state)
{
    fixture_t *f = *state;
    gw_t *gw = open_gw(f);
    gw_key_t *k;

    k = gw_key_find(gw, "demo-secret", strlen("demo-secret"));
    assert_non_null(k);
    assert_string_equal(k->id, "demo");
    assert_int_equal(k->plan, 0);
    assert_true(k->from_conf);
    assert_int_equal(atomic_load(&k->enabled), 1);
    assert_null(gw_key_find(gw, "demo-secre", strlen("demo-secre")));
    assert_null(gw_key_find(gw, "", 0));
    k = gw_key_find(gw, "off-secret", strlen("off-secret"));
    assert_non_null(k);
    assert_int_equal(atomic_load(&k->enabled), 0);
    assert_ptr_equal(gw_key_by_id(gw, "off", 3), k);
    assert_null(gw_key_by_id(gw, "of", 2));
    /* conf keys cannot be changed through the API */
    done_t d;
    sem_init(&d.sem, 0, 0);
    assert_int_equal(gw_key_set_enabled(gw, "demo", 0, on_done, &d), 0);
    sem_wait(&d.sem);
    assert_int_equal(d.err, EPERM);
    assert_int_equal(gw_key_remove(gw, "nope", on_done, &d), 0);
    sem_wait(&d.sem);
    assert_int_equal(d.err, ENOENT);
    assert_int_equal(atomic_load(&gw_key_by_id(gw, "demo", 4)->enabled), 1);
    gw_close(gw);
}

static void test_create_disable_remove_persist(void **state)
{
    fixture_t *f = *state;
    gw_t *gw = open_gw(f);
    char secret[GW_KEY_SECRET_LEN + 1], id[GW_KEY_ID_MAX + 1];
    done_t d;

    sem_init(&d.sem, 0, 0);
    assert_int_equal(gw_key_create(gw, "mobile", 1, secret, on_done, &d), 0);
    sem_wait(&d.sem);
    assert_int_equal(d.err, 0);
    assert_non_null(d.key);
    assert_int_equal(strlen(secret), GW_KEY_SECRET_LEN);
    for (size_t i = 0; i != GW_KEY_SECRET_LEN; ++i)
        assert_true((secret[i] >= 'a' && secret[i] <= 'z') || (secret[i] >= 'A' && secret[i] <= 'Z') ||
                    (secret[i] >= '0' && secret[i] <= '9'));
    assert_string_equal(d.key->name, "mobile");
    assert_int_equal(d.key->id[0], 'k');
    assert_int_equal(strlen(d.key->id), 17);
    strcpy(id, d.key->id);
    assert_ptr_equal(gw_key_find(gw, secret, strlen(secret)), d.key);
    size_t n;
    gw_key_t **list = gw_keys_list(gw, &n);
    assert_int_equal(n, 3);
    assert_string_equal(list[0]->id, "demo");
    assert_string_equal(list[2]->id, id);
    free(list);
    /* two keys never share a secret */
    char secret2[GW_KEY_SECRET_LEN + 1];
    assert_int_equal(gw_key_create(gw, NULL, -1, secret2, on_done, &d), 0);
    sem_wait(&d.sem);
    assert_int_equal(d.err, 0);
    assert_string_not_equal(secret, secret2);
    assert_string_equal(d.key->name, d.key->id);
    /* disable, then restart: still there, still disabled */
    assert_int_equal(gw_key_set_enabled(gw, id, 0, on_done, &d), 0);
    sem_wait(&d.sem);
    assert_int_equal(d.err, 0);
    assert_int_equal(atomic_load(&gw_key_by_id(gw, id, strlen(id))->enabled), 0);
    gw_close(gw);

    gw = open_gw(f);
    gw_key_t *k = gw_key_find(gw, secret, strlen(secret));
    assert_non_null(k);
    assert_string_equal(k->id, id);
    assert_string_equal(k->name, "mobile");
    assert_int_equal(k->plan, 1);
    assert_false(k->from_conf);
    assert_int_equal(atomic_load(&k->enabled), 0);
    assert_true(k->created_s > 1700000000);
    /* remove: not found at once, and not after a restart */
    assert_int_equal(gw_key_remove(gw, id, on_done, &d), 0);
    sem_wait(&d.sem);
    assert_int_equal(d.err, 0);
    assert_int_equal(atomic_load(&k->deleted), 1);
    assert_null(gw_key_find(gw, secret, strlen(secret)));
    assert_null(gw_key_by_id(gw, id, strlen(id)));
    gw_close(gw);
    gw = open_gw(f);
    assert_null(gw_key_find(gw, secret, strlen(secret)));
    assert_non_null(gw_key_find(gw, secret2, strlen(secret2)));
    gw_close(gw);
}

static void test_quota_counts_persist(void **state)
{
    fixture_t *f = *state;
    gw_t *gw = open_gw(f);
    int64_t now = (int64_t)(gw_now_ns() / 1000000000);
    gw_quota_take_t t;
    gw_key_t *k = gw_key_find(gw, "demo-secret", strlen("demo-secret"));

    for (int i = 0; i != 7; ++i)
        gw_quota_take(&k->quota, 1000, CONF_PERIOD_DAY, now, &t);
    assert_int_equal(t.used, 7);
    gw_quota_take(&k->today, CONF_MAX_QUOTA, CONF_PERIOD_DAY, now, &t);
    gw_close(gw);
    gw = open_gw(f);
    k = gw_key_find(gw, "demo-secret", strlen("demo-secret"));
    assert_int_equal(gw_quota_used(&k->quota, CONF_PERIOD_DAY, now), 7);
    assert_int_equal(gw_quota_used(&k->today, CONF_PERIOD_DAY, now), 1);
    gw_quota_take(&k->quota, 1000, CONF_PERIOD_DAY, now, &t);
    assert_int_equal(t.used, 8);
    gw_close(gw);
}

/* A stored key whose plan left the conf is refused rather than let through without limits. */
static void test_plan_gone(void **state)
{
    fixture_t *f = *state;
    gw_t *gw = open_gw(f);
    char secret[GW_KEY_SECRET_LEN + 1];
    done_t d;

    sem_init(&d.sem, 0, 0);
    assert_int_equal(gw_key_create(gw, "g", 1, secret, on_done, &d), 0);
    sem_wait(&d.sem);
    assert_int_equal(d.err, 0);
    gw_close(gw);
    f->conf.nplans = 1; /* "gold" is gone */
    gw = open_gw(f);
    gw_key_t *k = gw_key_find(gw, secret, strlen(secret));
    assert_non_null(k);
    assert_int_equal(k->plan, -1);
    assert_int_equal(atomic_load(&k->enabled), 0);
    gw_close(gw);
}

/* The per-thread memo finds what gw_key_find finds, and never a deleted key. */
static void test_memo(void **state)
{
    fixture_t *f = *state;
    gw_t *gw = open_gw(f);
    gw_key_memo_t *memo = calloc(1, sizeof(*memo));
    char secret[GW_KEY_SECRET_LEN + 1];
    done_t d;

    sem_init(&d.sem, 0, 0);
    assert_int_equal(gw_key_create(gw, "m", 0, secret, on_done, &d), 0);
    sem_wait(&d.sem);
    for (int i = 0; i != 3; ++i) {
        assert_ptr_equal(gw_key_find_memo(gw, memo, secret, strlen(secret)), d.key);
        assert_ptr_equal(gw_key_find_memo(gw, memo, "demo-secret", 11), gw_key_by_id(gw, "demo", 4));
        assert_null(gw_key_find_memo(gw, memo, secret, strlen(secret) - 1));
        assert_null(gw_key_find_memo(gw, memo, "", 0));
    }
    assert_int_equal(gw_key_remove(gw, d.key->id, on_done, &d), 0);
    sem_wait(&d.sem);
    assert_int_equal(d.err, 0);
    assert_null(gw_key_find_memo(gw, memo, secret, strlen(secret)));
    free(memo);
    gw_close(gw);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(gw_key_name_is_valid("a.B_c-9", 7));
    assert_false(gw_key_name_is_valid("", 0));
    assert_false(gw_key_name_is_valid("a b", 3));
    assert_false(gw_key_name_is_valid("a/b", 3));
    char long_name[66];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_false(gw_key_name_is_valid(long_name, 65));
    assert_true(gw_key_name_is_valid(long_name, 64));
    assert_string_equal(gw_strerror(EPERM), "the key is defined in the conf file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conf_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_disable_remove_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_counts_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memo, setup, teardown),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
