/*
 * Unit tests of cache/store.c: the LMDB object store. Each test opens its store in a fresh mkdtemp() directory, which
 * teardown removes. Ids are SHA-256 values of "obj-N", as the caller's would be.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cache/cache.h"
#include "cache/store_internal.h" /* white-box tests: the record format and the inline limit */

#define MiB (1024u * 1024)

typedef struct fixture {
    char dir[64];  /* the mkdtemp() directory */
    char path[96]; /* the store's directory inside it (not created: open must create it) */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/ep-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/cache/db", f->dir);
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

static void make_id(int n, uint8_t id[CACHE_STORE_ID_LEN])
{
    char s[32];
    int len = snprintf(s, sizeof(s), "obj-%d", n);
    assert_int_equal(mbedtls_sha256_ret((const unsigned char *)s, (size_t)len, id, 0), 0);
}

static void *test_alloc(size_t size, void *data)
{
    (void)data;
    return malloc(size != 0 ? size : 1);
}

static _Atomic int64_t fake_now;

static int64_t fake_clock(void *data)
{
    (void)data;
    return atomic_load(&fake_now);
}

static cache_store_t *open_store(const char *path, uint64_t max_size, cache_store_options_t *extra)
{
    cache_store_options_t opts = extra != NULL ? *extra : (cache_store_options_t){0};
    cache_store_t *s;
    char err[256] = "";

    opts.max_size = max_size;
    int rc = cache_store_open(path, &opts, &s, err, sizeof(err));
    if (rc != 0)
        fail_msg("cache_store_open: %s", err);
    return s;
}

static uint8_t body_byte(int n, int version, size_t i)
{
    return (uint8_t)(n * 7 + version + i % 251);
}

static void fill_body(uint8_t *body, size_t len, int n, int version)
{
    for (size_t i = 0; i < len; i++)
        body[i] = body_byte(n, version, i);
}

static int body_ok(const uint8_t *body, size_t len, int n, int version)
{
    for (size_t i = 0; i < len; i++)
        if (body[i] != body_byte(n, version, i))
            return 0;
    return 1;
}

/* Puts object n: meta "meta-n-v", a body of body_len pattern bytes, the given url, host and tags. */
static int put_obj(cache_store_t *s, int n, int version, const char *url, const char *host, const char *const *tags, size_t ntags,
                   size_t body_len, int64_t stored_ms, int64_t expires_ms)
{
    uint8_t id[CACHE_STORE_ID_LEN], *body = malloc(body_len != 0 ? body_len : 1);
    char meta[64];
    int rc;

    make_id(n, id);
    snprintf(meta, sizeof(meta), "meta-%d-%d", n, version);
    fill_body(body, body_len, n, version);
    cache_store_object_t obj = {.meta = meta,
                                .meta_len = strlen(meta),
                                .body = body,
                                .body_len = body_len,
                                .url = url,
                                .host = host,
                                .tags = tags,
                                .ntags = ntags,
                                .stored_ms = stored_ms,
                                .expires_ms = expires_ms};
    rc = cache_store_put(s, id, &obj, 0);
    free(body);
    return rc;
}

static int exists(cache_store_t *s, int n)
{
    uint8_t id[CACHE_STORE_ID_LEN];
    cache_store_item_t it;
    int rc;

    make_id(n, id);
    if ((rc = cache_store_get_meta(s, id, test_alloc, NULL, &it)) == 0)
        free((void *)it.meta);
    else
        assert_int_equal(rc, CACHE_STORE_ENOTFOUND);
    return rc == 0;
}

/* Opens the closed store at path read-only: its objects database (checked to have no overflow pages: every record fits
 * in a leaf page) and its bodies database. */
static MDB_txn *open_file(const char *path, MDB_env **env, MDB_dbi *bodies)
{
    MDB_txn *txn;
    MDB_dbi objects;
    MDB_stat st;

    assert_int_equal(mdb_env_create(env), 0);
    assert_int_equal(mdb_env_set_maxdbs(*env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(*env, 64 * MiB), 0);
    assert_int_equal(mdb_env_open(*env, path, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "objects", 0, &objects), 0);
    assert_int_equal(mdb_stat(txn, objects, &st), 0);
    assert_int_equal(st.ms_overflow_pages, 0);
    assert_int_equal(mdb_dbi_open(txn, "bodies", 0, bodies), 0);
    return txn;
}

/* Entries in the bodies database of the closed store at path (what is not inline). */
static size_t bodies_in_file(const char *path)
{
    MDB_env *env;
    MDB_dbi dbi;
    MDB_stat st;
    MDB_txn *txn = open_file(path, &env, &dbi);

    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return st.ms_entries;
}

/* Whether the bodies database of the closed store at path holds id's body. */
static int in_bodies(const char *path, const uint8_t *id)
{
    MDB_env *env;
    MDB_dbi dbi;
    MDB_val k = {CACHE_STORE_ID_LEN, (void *)id}, v;
    MDB_txn *txn = open_file(path, &env, &dbi);
    int rc = mdb_get(txn, dbi, &k, &v);

    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc == 0;
}

static void test_roundtrip(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 16 * MiB, NULL);
    const char *tags[] = {"t1", "", "t2"};
    uint8_t id[CACHE_STORE_ID_LEN], missing[CACHE_STORE_ID_LEN];
    cache_store_item_t it;
    cache_store_ref_t *ref;
    cache_store_stats_t st;

    assert_int_equal(put_obj(s, 1, 0, "example.com/a?b=1", "example.com", tags, 3, 1000, 1234, 0), 0);
    assert_int_equal(put_obj(s, 2, 0, "other.com/a", "example.com", NULL, 0, 10, 1, 0), CACHE_STORE_EINVAL);
    cache_store_flush(s);
    make_id(1, id);
    make_id(99, missing);

    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_int_equal(it.meta_len, strlen("meta-1-0"));
    assert_memory_equal(it.meta, "meta-1-0", it.meta_len);
    assert_int_equal(it.body_len, 1000);
    assert_true(body_ok(it.body, 1000, 1, 0));
    assert_string_equal(it.url, "example.com/a?b=1");
    assert_string_equal(it.host, "example.com");
    assert_int_equal(it.ntags, 2); /* the empty one is dropped */
    assert_memory_equal(it.tags, "t1\0t2\0", 6);
    assert_int_equal(it.stored_ms, 1234);
    assert_int_equal(it.expires_ms, 0);
    assert_int_equal(it.flags, 0);
    free((void *)it.meta);

    assert_int_equal(cache_store_get_meta(s, id, test_alloc, NULL, &it), 0);
    assert_null(it.body);
    assert_int_equal(it.body_len, 1000);
    assert_memory_equal(it.meta, "meta-1-0", it.meta_len);
    assert_string_equal(it.url, "example.com/a?b=1");
    free((void *)it.meta);

    assert_int_equal(cache_store_get_ref(s, id, &ref, &it), 0);
    assert_non_null(ref);
    assert_true(body_ok(it.body, it.body_len, 1, 0));
    assert_string_equal(it.host, "example.com");
    cache_store_release(ref);

    assert_int_equal(cache_store_get(s, missing, test_alloc, NULL, &it), CACHE_STORE_ENOTFOUND);
    assert_int_equal(cache_store_get_meta(s, missing, test_alloc, NULL, &it), CACHE_STORE_ENOTFOUND);
    assert_int_equal(cache_store_get_ref(s, missing, &ref, &it), CACHE_STORE_ENOTFOUND);
    assert_null(ref);

    cache_store_stats(s, &st);
    assert_int_equal(st.objects, 1);
    assert_int_equal(st.puts, 1);
    assert_true(st.bytes_used > 0 && st.bytes_used < 16 * MiB);

    /* a second put of the same id replaces it; delete removes it */
    assert_int_equal(put_obj(s, 1, 5, "example.com/new", "example.com", NULL, 0, 10, 1, 0), 0);
    cache_store_flush(s);
    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_string_equal(it.url, "example.com/new");
    assert_int_equal(it.ntags, 0);
    assert_true(body_ok(it.body, 10, 1, 5));
    free((void *)it.meta);
    assert_int_equal(cache_store_delete(s, id), 0);
    cache_store_flush(s);
    assert_false(exists(s, 1));
    cache_store_stats(s, &st);
    assert_int_equal(st.objects, 0);
    cache_store_close(s);
}

/* copy_body of the tests: copy_data points to the object's number n (version 0 bodies) */
static void copy_pattern(void *data, char *dst, size_t len)
{
    int n = *(int *)data;
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)body_byte(n, 0, i);
}

static void test_body_sizes(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 256 * MiB, NULL); /* max_object_size: 32 MiB */
    size_t big = 20 * MiB;
    uint8_t id[CACHE_STORE_ID_LEN], *body = malloc(big);
    cache_store_item_t it;
    cache_store_stats_t st;

    assert_int_equal(put_obj(s, 1, 0, "h/empty", "h", NULL, 0, 0, 1, 0), 0);
    fill_body(body, big, 2, 0);
    make_id(2, id);
    cache_store_object_t obj = {.meta = "m", .meta_len = 1, .body = body, .body_len = big, .url = "h/big", .host = "h"};
    assert_int_equal(cache_store_put(s, id, &obj, CACHE_STORE_PUT_TAKE_BODY), 0); /* the store frees body */
    obj.body = malloc(40 * MiB);
    obj.body_len = 40 * MiB;
    assert_int_equal(cache_store_put(s, id, &obj, CACHE_STORE_PUT_TAKE_BODY), CACHE_STORE_ETOOBIG); /* freed too */
    cache_store_flush(s);

    make_id(1, id);
    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_int_equal(it.body_len, 0);
    assert_memory_equal(it.meta, "meta-1-0", 8);
    free((void *)it.meta);

    make_id(2, id);
    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_int_equal(it.body_len, big);
    assert_true(body_ok(it.body, big, 2, 0));
    assert_string_equal(it.url, "h/big");
    free((void *)it.meta);

    /* a body written by the caller's copy_body, in pieces (inline size and not) */
    for (int i = 0; i < 2; i++) {
        size_t len = i == 0 ? 900 : 100000;
        cache_store_object_t co = {
            .meta = "c", .meta_len = 1, .body_len = len, .copy_body = copy_pattern, .url = "h/c", .host = "h"};
        int n = 3 + i;
        co.copy_data = &n;
        make_id(n, id);
        assert_int_equal(cache_store_put(s, id, &co, 0), 0);
        cache_store_flush(s);
        assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
        assert_int_equal(it.body_len, len);
        assert_true(body_ok(it.body, len, n, 0));
        free((void *)it.meta);
        co.copy_body = NULL; /* no body and no copy_body */
        assert_int_equal(cache_store_put(s, id, &co, 0), CACHE_STORE_EINVAL);
    }

    cache_store_stats(s, &st);
    assert_int_equal(st.objects, 4);
    assert_int_equal(st.puts_too_big, 1);
    assert_true(st.bytes_used >= big);
    cache_store_close(s);
}

static void test_update_meta(void **state)
{
    fixture_t *f = *state;
    cache_store_options_t opts = {.clock_ms = fake_clock}; /* no expiry: the clock stays at 0 */
    const char *tags[] = {"tag"};
    uint8_t id[CACHE_STORE_ID_LEN], missing[CACHE_STORE_ID_LEN];
    cache_store_item_t it;

    atomic_store(&fake_now, 0);
    cache_store_t *s = open_store(f->path, 16 * MiB, &opts);
    make_id(1, id);
    make_id(2, missing);
    assert_int_equal(put_obj(s, 1, 0, "h/x", "h", tags, 1, 300000, 100, 5000), 0);
    assert_int_equal(cache_store_purge(s, CACHE_STORE_PURGE_URL, "h/x", 1, NULL, NULL), 0); /* soft: stale */
    assert_int_equal(cache_store_update_meta(s, id, "fresh headers", 13, 200, 9000), 0);
    assert_int_equal(cache_store_update_meta(s, missing, "x", 1, 200, 9000), 0); /* gone: nothing happens */
    cache_store_flush(s);

    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_int_equal(it.meta_len, 13);
    assert_memory_equal(it.meta, "fresh headers", 13);
    assert_int_equal(it.body_len, 300000);
    assert_true(body_ok(it.body, 300000, 1, 0));
    assert_string_equal(it.url, "h/x");
    assert_int_equal(it.ntags, 1);
    assert_string_equal(it.tags, "tag");
    assert_int_equal(it.stored_ms, 200);
    assert_int_equal(it.expires_ms, 9000);
    assert_int_equal(it.flags & CACHE_STORE_F_STALE, 0);
    free((void *)it.meta);
    assert_false(exists(s, 2));

    /* a small object's body is kept inline in its record: it stays through a soft purge and an update_meta */
    make_id(3, id);
    assert_int_equal(put_obj(s, 3, 0, "h/small", "h", tags, 1, 500, 100, 5000), 0);
    assert_int_equal(cache_store_purge(s, CACHE_STORE_PURGE_URL, "h/small", 1, NULL, NULL), 0);
    cache_store_flush(s);
    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_int_equal(it.flags, CACHE_STORE_F_STALE); /* the store's own flag bits stay inside */
    assert_true(body_ok(it.body, 500, 3, 0));
    free((void *)it.meta);
    assert_int_equal(cache_store_update_meta(s, id, "much longer fresh headers", 25, 300, 9000), 0);
    cache_store_flush(s);
    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_memory_equal(it.meta, "much longer fresh headers", 25);
    assert_int_equal(it.body_len, 500);
    assert_true(body_ok(it.body, 500, 3, 0));
    assert_string_equal(it.url, "h/small");
    assert_string_equal(it.tags, "tag");
    assert_int_equal(it.flags, 0);
    free((void *)it.meta);
    /* replaced by a large object and back by a small one: the bodies follow, none is left behind */
    assert_int_equal(put_obj(s, 3, 1, "h/small", "h", NULL, 0, 300000, 400, 0), 0);
    cache_store_flush(s);
    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_true(it.body_len == 300000 && body_ok(it.body, 300000, 3, 1));
    free((void *)it.meta);
    assert_int_equal(put_obj(s, 3, 2, "h/small", "h", NULL, 0, 700, 500, 0), 0);
    cache_store_flush(s);
    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_true(it.body_len == 700 && body_ok(it.body, 700, 3, 2));
    free((void *)it.meta);
    cache_store_close(s);

    assert_int_equal(bodies_in_file(f->path), 1); /* object 1's body only */
}

/* The boundary of inline bodies: a record whose body makes it exactly s->inline_max long keeps the body inline, one
 * byte more goes to the bodies database (white-box: store_internal.h's record header and limit). */
static void test_inline_boundary(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 64 * MiB, NULL);
    size_t rec_len = sizeof(rec_hdr_t) + strlen("meta-1-0") + strlen("h/in") + 1 + strlen("h") + 1;
    size_t at = s->inline_max - rec_len;
    uint8_t id[CACHE_STORE_ID_LEN];
    cache_store_item_t it;

    assert_true(s->inline_max > rec_len && s->inline_max < 4096);
    assert_int_equal(put_obj(s, 1, 0, "h/in", "h", NULL, 0, at, 1, 0), 0);
    assert_int_equal(put_obj(s, 2, 0, "h/in", "h", NULL, 0, at + 1, 1, 0), 0);
    cache_store_flush(s);
    for (int n = 1; n <= 2; n++) {
        make_id(n, id);
        assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
        assert_int_equal(it.body_len, at + (size_t)n - 1);
        assert_true(body_ok(it.body, it.body_len, n, 0));
        free((void *)it.meta);
    }
    cache_store_close(s);
    assert_int_equal(bodies_in_file(f->path), 1);
    make_id(2, id);
    assert_true(in_bodies(f->path, id)); /* object 2's body, one byte past the limit */
    make_id(1, id);
    assert_false(in_bodies(f->path, id));
}

/* cs_rec_parse refuses a damaged record instead of reading past it (white-box). */
static void test_damaged_records(void **state)
{
    char buf[2048];
    rec_hdr_t h = {.flags = REC_F_INLINE, .meta_len = 2, .url_len = 3, .host_len = 1, .tags_len = 4, .ntags = 2, .body_len = 5};
    size_t len = sizeof(h) + 2 + 4 + 2 + 4 + 5;
    rec_t r;

    (void)state;
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), "mmh/x\0h\0a\0b\0bbbbb", len - sizeof(h)); /* meta, url NUL, host NUL, tags, body */
    assert_int_equal(cs_rec_parse(buf, len, &r), 0);
    assert_memory_equal(r.body, "bbbbb", 5);
    assert_string_equal(r.url, "h/x");
    assert_string_equal(r.tags + 2, "b");
    assert_int_equal(cs_rec_parse(buf, len - 1, &r), -1); /* shorter than its lengths say */
    assert_int_equal(cs_rec_parse(buf, sizeof(h) - 1, &r), -1);
    for (int i = 0; i < 6; i++) {
        rec_hdr_t bad = h;
        switch (i) {
        case 0: /* a body past the record */
            bad.body_len = len + 1;
            break;
        case 1: /* lengths whose sum wraps around to the record's length: only the body check stops it (the strings are
                 * there past the record's end, so that a parse without it would succeed) */
            bad.meta_len = 1000;
            bad.body_len = (uint64_t)len - (sizeof(h) + 1000 + 4 + 2 + 4);
            memcpy(buf + sizeof(h) + 1000, "h/x\0h\0a\0b\0", 10);
            break;
        case 2: /* one tag more than the record holds */
            bad.ntags = 3;
            break;
        case 3:
            bad.ntags = 0;
            break;
        case 4: /* tags that do not end with a NUL */
            bad.tags_len = 3;
            bad.body_len = 6;
            break;
        default: /* a host without its NUL */
            bad.host_len = 2;
            bad.tags_len = 3;
            break;
        }
        memcpy(buf, &bad, sizeof(bad));
        if (cs_rec_parse(buf, len, &r) != -1)
            fail_msg("damaged record %d accepted", i);
    }
    memcpy(buf, &h, sizeof(h));
    buf[sizeof(h) + 2 + 3] = 'x'; /* the url's NUL */
    assert_int_equal(cs_rec_parse(buf, len, &r), -1);
}

/* One store per directory: a second open, while the first is open, is refused; after the close it works. */
static void test_directory_locked(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 16 * MiB, NULL), *t = NULL;
    cache_store_options_t o = {.max_size = 16 * MiB};
    char err[512] = "";

    assert_int_equal(cache_store_open(f->path, &o, &t, err, sizeof(err)), CACHE_STORE_EIO);
    assert_null(t);
    assert_non_null(strstr(err, "in use by another process"));
    assert_non_null(strstr(err, f->path));
    cache_store_close(s);
    assert_int_equal(cache_store_open(f->path, &o, &t, err, sizeof(err)), 0);
    cache_store_close(t);
}

static void test_persistence(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 16 * MiB, NULL);
    const char *tags[] = {"keep"};
    cache_store_stats_t st;
    int count = 0;

    for (int i = 0; i < 3; i++)
        assert_int_equal(put_obj(s, i, 0, "h/p", "h", tags, 1, 5000 * (size_t)i, 1, 0), 0);
    cache_store_close(s); /* close applies what is queued */

    s = open_store(f->path, 16 * MiB, NULL);
    cache_store_stats(s, &st);
    assert_int_equal(st.objects, 3);
    for (int i = 0; i < 3; i++) {
        uint8_t id[CACHE_STORE_ID_LEN];
        cache_store_item_t it;
        make_id(i, id);
        assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
        assert_int_equal(it.body_len, 5000 * (size_t)i);
        assert_true(body_ok(it.body, it.body_len, i, 0));
        free((void *)it.meta);
    }
    /* the indexes persisted too */
    assert_int_equal(cache_store_purge(s, CACHE_STORE_PURGE_TAG, "keep", 0, NULL, NULL), 0);
    cache_store_flush(s);
    for (int i = 0; i < 3; i++)
        count += exists(s, i);
    assert_int_equal(count, 0);
    cache_store_close(s);
}

/* Runs cache_store_open with stderr going to a file; returns what it wrote. */
static char *open_capturing_stderr(const fixture_t *f, cache_store_t **s)
{
    char log[128], *text = calloc(1, 4096);
    int saved, fd, rc;
    cache_store_options_t opts = {.max_size = 16 * MiB};
    char err[256];

    snprintf(log, sizeof(log), "%s/stderr.txt", f->dir);
    fflush(stderr);
    saved = dup(2);
    fd = open(log, O_CREAT | O_TRUNC | O_RDWR, 0600);
    dup2(fd, 2);
    rc = cache_store_open(f->path, &opts, s, err, sizeof(err));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc, 0);
    assert_true(pread(fd, text, 4095, 0) >= 0);
    close(fd);
    return text;
}

static void test_corrupt_file(void **state)
{
    fixture_t *f = *state;
    char file[160], *log;
    cache_store_t *s;
    cache_store_stats_t st;
    uint8_t junk[65536];
    FILE *fp;

    s = open_store(f->path, 16 * MiB, NULL); /* creates the directory and a valid store... */
    assert_int_equal(put_obj(s, 1, 0, "h/a", "h", NULL, 0, 100, 1, 0), 0);
    cache_store_close(s);
    snprintf(file, sizeof(file), "%s/data.mdb", f->path);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    assert_non_null(fp = fopen(file, "w")); /* ...which garbage replaces */
    assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
    fclose(fp);

    log = open_capturing_stderr(f, &s);
    assert_non_null(strstr(log, f->path));
    assert_non_null(strstr(log, "MDB_INVALID"));
    assert_non_null(strstr(log, "starting empty"));
    assert_int_equal(strchr(log, '\n') - log + 1, strlen(log)); /* one line */
    free(log);
    cache_store_stats(s, &st);
    assert_int_equal(st.objects, 0);
    assert_false(exists(s, 1));
    assert_int_equal(put_obj(s, 2, 0, "h/b", "h", NULL, 0, 100, 1, 0), 0);
    cache_store_flush(s);
    assert_true(exists(s, 2));
    cache_store_close(s);
    snprintf(file, sizeof(file), "%s/data.mdb.corrupt", f->path);
    assert_int_equal(access(file, F_OK), 0);
}

static void read_text(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, buf, len - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void copy_file(const char *from, const char *to)
{
    struct stat st;
    char *buf;
    int fd = open(from, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
    close(fd);
    write_file(to, buf, (size_t)st.st_size);
    free(buf);
}

/* The unsynced marker (MDB_NOSYNC): written before the first commit after a sync, removed by the sync that follows
 * a second without commits and by a clean close; at open, a marker of another boot means a torn file. */
static void test_unsynced_marker(void **state)
{
    fixture_t *f = *state;
    char boot[64], marker[160], text[64], from[256], to[256], img[2][96], *log;
    cache_store_t *s;
    int i;

    read_text("/proc/sys/kernel/random/boot_id", boot, sizeof(boot));
    assert_true(strlen(boot) > 0);
    s = open_store(f->path, 16 * MiB, NULL);
    snprintf(marker, sizeof(marker), "%s/unsynced", f->path);
    assert_int_equal(access(marker, F_OK), -1); /* opening synced what it wrote */
    assert_int_equal(put_obj(s, 1, 0, "h/a", "h", NULL, 0, 100, 1, 0), 0);
    cache_store_flush(s);
    read_text(marker, text, sizeof(text));
    assert_string_equal(text, boot);

    /* two images of the store as the kernel has it now, as a crash would leave it */
    for (i = 0; i < 2; i++) {
        snprintf(img[i], sizeof(img[i]), "%s/img%d", f->dir, i);
        assert_int_equal(mkdir(img[i], 0700), 0);
        snprintf(from, sizeof(from), "%s/data.mdb", f->path);
        snprintf(to, sizeof(to), "%s/data.mdb", img[i]);
        copy_file(from, to);
        snprintf(to, sizeof(to), "%s/unsynced", img[i]);
        copy_file(marker, to);
    }
    snprintf(to, sizeof(to), "%s/unsynced", img[1]);
    write_file(to, "00000000-0000-0000-0000-000000000000\n", 37); /* image 1: the system went down */

    /* idle for a second: the writer syncs and removes the marker (polled: up to 10 s on a slow machine) */
    for (i = 0; i < 200 && access(marker, F_OK) == 0; i++)
        usleep(50000);
    assert_int_equal(access(marker, F_OK), -1);
    assert_int_equal(put_obj(s, 2, 0, "h/b", "h", NULL, 0, 100, 1, 0), 0);
    cache_store_flush(s);
    assert_int_equal(access(marker, F_OK), 0); /* the next commit writes it again */
    cache_store_close(s);
    assert_int_equal(access(marker, F_OK), -1); /* a clean close syncs */

    /* image 0: only the process stopped: everything committed is there, the marker stays until the next sync */
    s = open_store(img[0], 16 * MiB, NULL);
    assert_true(exists(s, 1));
    cache_store_close(s);
    snprintf(to, sizeof(to), "%s/unsynced", img[0]);
    assert_int_equal(access(to, F_OK), -1);

    /* image 1: torn, perhaps: moved aside, started empty, one line on stderr */
    strcpy(f->path, img[1]);
    log = open_capturing_stderr(f, &s);
    assert_non_null(strstr(log, img[1]));
    assert_non_null(strstr(log, "the system went down"));
    assert_non_null(strstr(log, "starting empty"));
    assert_int_equal(strchr(log, '\n') - log + 1, strlen(log));
    free(log);
    assert_false(exists(s, 1));
    cache_store_close(s);
    snprintf(to, sizeof(to), "%s/data.mdb.corrupt", img[1]);
    assert_int_equal(access(to, F_OK), 0);
}

static void test_bad_format(void **state)
{
    fixture_t *f = *state;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cache_store_t *s;
    char *log;

    /* a valid LMDB environment, but someone else's */
    snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, f->path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &(MDB_val){6, "format"}, &(MDB_val){7, "other/9"}, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    log = open_capturing_stderr(f, &s);
    assert_non_null(strstr(log, f->path));
    assert_non_null(strstr(log, "format marker"));
    free(log);
    assert_int_equal(put_obj(s, 1, 0, "h/b", "h", NULL, 0, 100, 1, 0), 0);
    cache_store_flush(s);
    assert_true(exists(s, 1));
    cache_store_close(s);
}

static void test_eviction(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 8 * MiB, NULL);
    cache_store_stats_t st;
    int touched = 0, untouched = 0, total = 0;

    for (int i = 0; i < 40; i++)
        assert_int_equal(put_obj(s, i, 0, "h/e", "h", NULL, 0, 100 * 1024, 1 + i, 0), 0);
    cache_store_flush(s);
    for (int i = 0; i < 20; i++) { /* hits on the first half */
        uint8_t id[CACHE_STORE_ID_LEN];
        make_id(i, id);
        cache_store_touch(s, id, 1000000);
    }
    for (int i = 40; i < 200; i++) {
        assert_int_equal(put_obj(s, i, 0, "h/e", "h", NULL, 0, 100 * 1024, 100 + i, 0), 0);
        if (i % 20 == 19) {
            cache_store_flush(s);
            cache_store_stats(s, &st);
            assert_true(st.bytes_used <= 8 * MiB);
        }
    }
    cache_store_flush(s);
    cache_store_stats(s, &st);
    assert_true(st.bytes_used <= 8 * MiB);
    assert_true(st.evictions > 0);
    assert_int_equal(st.puts_dropped, 0);
    for (int i = 0; i < 200; i++)
        total += exists(s, i);
    assert_int_equal(total, st.objects);
    assert_true(total < 80 && total > 30);
    assert_int_equal(st.evictions, 200 - total);
    for (int i = 0; i < 20; i++)
        touched += exists(s, i);
    for (int i = 20; i < 40; i++)
        untouched += exists(s, i);
    /* a touched object goes only when all 16 samples are touched ones (about (20/60)^16 per eviction) */
    assert_true(touched >= 18);
    assert_true(untouched <= 5); /* the oldest untouched ones are the first candidates */
    print_message("eviction: %d of 200 left, %d/20 touched, %d/20 untouched early ones, %llu bytes used\n", total, touched,
                  untouched, (unsigned long long)st.bytes_used);
    cache_store_close(s);
}

/* A store filled under a larger max_size and opened with a smaller one: its pages fill the map the smaller size gives
 * (LMDB raises a map to the file's last page, no further), where even eviction, which copies pages, finds no room. It
 * must get room to evict, evict down to the new size in steps, and keep storing meanwhile. */
static void test_max_size_lowered(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 64 * MiB, NULL);
    cache_store_stats_t st;
    int n = 1600, left = 0;

    for (int i = 0; i < n; i++)
        assert_int_equal(put_obj(s, i, 0, "h/l", "h", NULL, 0, 24 * 1024, 1 + i, 0), 0);
    cache_store_flush(s);
    cache_store_stats(s, &st);
    assert_true(st.bytes_used > 32 * MiB);
    assert_int_equal(st.evictions, 0);
    cache_store_close(s);

    s = open_store(f->path, 4 * MiB, NULL); /* its own map would be 15 MiB */
    for (int i = n; i < n + 20; i++)
        assert_int_equal(put_obj(s, i, 0, "h/l", "h", NULL, 0, 24 * 1024, 100000 + i, 0), 0);
    for (int tries = 0; tries < 200; tries++) { /* the writer evicts in steps, a transaction each */
        cache_store_flush(s);
        cache_store_stats(s, &st);
        if (st.bytes_used <= 4 * MiB)
            break;
        usleep(50 * 1000);
    }
    assert_int_equal(st.puts_dropped, 0);
    assert_true(st.bytes_used <= 4 * MiB);
    assert_true(st.evictions >= (uint64_t)n - 200);
    for (int i = n; i < n + 20; i++) /* the newest, stored while it evicted, are the last candidates */
        left += exists(s, i);
    assert_true(left >= 15);
    print_message("max_size lowered: %llu evictions, %llu bytes used, %d/20 new ones left, map %llu MiB\n",
                  (unsigned long long)st.evictions, (unsigned long long)st.bytes_used, left,
                  (unsigned long long)(st.map_size / MiB));
    cache_store_close(s);
}

static void test_expiry(void **state)
{
    fixture_t *f = *state;
    cache_store_options_t opts = {.clock_ms = fake_clock, .expiry_interval_ms = 1000};
    cache_store_stats_t st;
    cache_store_t *s;

    atomic_store(&fake_now, 0);
    s = open_store(f->path, 16 * MiB, &opts);
    assert_int_equal(put_obj(s, 1, 0, "h/1", "h", NULL, 0, 10, 0, 1500), 0);
    assert_int_equal(put_obj(s, 2, 0, "h/2", "h", NULL, 0, 10, 0, 5000), 0);
    assert_int_equal(put_obj(s, 3, 0, "h/3", "h", NULL, 0, 10, 0, 0), 0); /* never */
    cache_store_flush(s);
    assert_true(exists(s, 1) && exists(s, 2) && exists(s, 3));

    atomic_store(&fake_now, 2000); /* a pass is due, and 1 expired */
    cache_store_flush(s);
    assert_false(exists(s, 1));
    assert_true(exists(s, 2) && exists(s, 3));
    cache_store_stats(s, &st);
    assert_int_equal(st.expired, 1);

    atomic_store(&fake_now, 2500); /* not due yet (the interval is 1000) */
    cache_store_flush(s);
    atomic_store(&fake_now, 1000000);
    cache_store_flush(s);
    assert_false(exists(s, 2));
    assert_true(exists(s, 3));
    cache_store_stats(s, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.objects, 1);
    cache_store_close(s);
}

typedef struct purge_result {
    int calls, err;
    size_t count;
} purge_result_t;

static void on_purged(int err, size_t count, void *data)
{
    purge_result_t *r = data;
    r->calls++;
    r->err = err;
    r->count = count;
}

/* Purges and returns how many it reported. */
static size_t purge(cache_store_t *s, cache_store_purge_kind_t kind, const char *arg, int soft)
{
    purge_result_t r = {0};
    assert_int_equal(cache_store_purge(s, kind, arg, soft, on_purged, &r), 0);
    cache_store_flush(s);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, 0);
    return r.count;
}

static void put_purge_set(cache_store_t *s)
{
    const char *ta[] = {"a"}, *tab[] = {"a", "b"};
    /* 0, 1: one URL (two variants); 2: below it; 3: another path; 4, 5: another host; 6: a host that extends "a.com" */
    assert_int_equal(put_obj(s, 0, 0, "a.com/x", "a.com", ta, 1, 10, 1, 0), 0);
    assert_int_equal(put_obj(s, 1, 0, "a.com/x", "a.com", tab, 2, 10, 1, 0), 0);
    assert_int_equal(put_obj(s, 2, 0, "a.com/x/y?q", "a.com", NULL, 0, 10, 1, 0), 0);
    assert_int_equal(put_obj(s, 3, 0, "a.com/z", "a.com", NULL, 0, 10, 1, 0), 0);
    assert_int_equal(put_obj(s, 4, 0, "b.com/x", "b.com", tab, 2, 10, 1, 0), 0);
    assert_int_equal(put_obj(s, 5, 0, "b.com/w", "b.com", NULL, 0, 10, 1, 0), 0);
    assert_int_equal(put_obj(s, 6, 0, "a.com.evil/x", "a.com.evil", NULL, 0, 10, 1, 0), 0);
    cache_store_flush(s);
}

static unsigned present(cache_store_t *s)
{
    unsigned mask = 0;
    for (int i = 0; i < 7; i++)
        mask |= (unsigned)exists(s, i) << i;
    return mask;
}

static void test_purge(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 16 * MiB, NULL);
    cache_store_stats_t st;

    put_purge_set(s);
    assert_int_equal(present(s), 0x7f);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_URL, "a.com/x", 0), 2);
    assert_int_equal(present(s), 0x7c);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_URL, "a.com/x", 0), 0);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_PREFIX, "a.com/x", 0), 1); /* a.com/x/y?q */
    assert_int_equal(present(s), 0x78);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_HOST, "a.com", 0), 1); /* a.com/z, not a.com.evil */
    assert_int_equal(present(s), 0x70);

    put_purge_set(s);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_TAG, "b", 0), 2); /* 1 and 4 */
    assert_int_equal(present(s), 0x6d);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_TAG, "a", 0), 1); /* 0 (1 and 4 went) */
    assert_int_equal(present(s), 0x6c);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_PREFIX, "a.com", 0), 3); /* 2, 3 and a.com.evil: bytes */
    assert_int_equal(present(s), 0x20);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_TAG, "none", 0), 0);

    put_purge_set(s);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_ALL, NULL, 0), 7);
    assert_int_equal(present(s), 0);
    cache_store_stats(s, &st);
    assert_int_equal(st.objects, 0);
    /* the indexes went with them: nothing left to find */
    assert_int_equal(purge(s, CACHE_STORE_PURGE_PREFIX, "a", 0), 0);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_TAG, "a", 0), 0);

    assert_int_equal(cache_store_purge(s, CACHE_STORE_PURGE_URL, "", 0, NULL, NULL), CACHE_STORE_EINVAL);
    assert_int_equal(cache_store_purge(s, CACHE_STORE_PURGE_TAG, NULL, 0, NULL, NULL), CACHE_STORE_EINVAL);
    cache_store_close(s);
}

static int is_stale(cache_store_t *s, int n)
{
    uint8_t id[CACHE_STORE_ID_LEN];
    cache_store_item_t it;
    int stale;

    make_id(n, id);
    assert_int_equal(cache_store_get(s, id, test_alloc, NULL, &it), 0);
    assert_true(body_ok(it.body, it.body_len, n, 0)); /* the body is kept */
    assert_int_equal(it.body_len, 10);
    stale = (it.flags & CACHE_STORE_F_STALE) != 0;
    free((void *)it.meta);
    return stale;
}

static void test_soft_purge(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 16 * MiB, NULL);

    put_purge_set(s);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_TAG, "b", 1), 2);
    assert_int_equal(present(s), 0x7f); /* nothing deleted */
    for (int i = 0; i < 7; i++)
        assert_int_equal(is_stale(s, i), i == 1 || i == 4);
    assert_int_equal(purge(s, CACHE_STORE_PURGE_HOST, "b.com", 1), 2);
    assert_true(is_stale(s, 5));
    assert_false(is_stale(s, 6));
    assert_int_equal(purge(s, CACHE_STORE_PURGE_ALL, NULL, 1), 7);
    for (int i = 0; i < 7; i++)
        assert_true(is_stale(s, i));
    /* a soft-purged object is still found by the indexes */
    assert_int_equal(purge(s, CACHE_STORE_PURGE_URL, "a.com/x", 0), 2);
    assert_int_equal(present(s), 0x7c);
    cache_store_close(s);
}

static sem_t writer_in_cb, writer_may_go;

static void on_purge_block(int err, size_t count, void *data)
{
    (void)err, (void)count, (void)data;
    sem_post(&writer_in_cb);
    sem_wait(&writer_may_go); /* holds the writer thread */
}

static void test_queue_bound(void **state)
{
    fixture_t *f = *state;
    cache_store_options_t opts = {.queue_max_ops = 16};
    cache_store_t *s = open_store(f->path, 16 * MiB, &opts);
    cache_store_stats_t st;
    struct timespec t0, t1;
    int dropped = 0;

    sem_init(&writer_in_cb, 0, 0);
    sem_init(&writer_may_go, 0, 0);
    assert_int_equal(cache_store_purge(s, CACHE_STORE_PURGE_ALL, NULL, 0, on_purge_block, NULL), 0);
    sem_wait(&writer_in_cb); /* the writer is stuck in the callback: nothing leaves the queue */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100; i++) {
        int rc = put_obj(s, i, 0, "h/q", "h", NULL, 0, 1000, 1, 0);
        assert_true(rc == 0 || rc == CACHE_STORE_EDROPPED);
        dropped += rc == CACHE_STORE_EDROPPED;
    }
    uint8_t id[CACHE_STORE_ID_LEN];
    make_id(0, id);
    assert_int_equal(cache_store_update_meta(s, id, "m", 1, 1, 0), CACHE_STORE_EDROPPED);
    assert_int_equal(cache_store_delete(s, id), 0); /* deletes are not bounded */
    uint64_t mark = cache_store_mark(s);
    assert_int_equal(mark, 1 + 16 + 1);      /* the purge, the 16 puts queued, the delete: dropped ops take no place */
    assert_false(cache_store_applied(s, 1)); /* the writer is still in the purge's batch */
    assert_false(cache_store_applied(s, mark));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000); /* nothing waited */
    assert_int_equal(dropped, 84);
    cache_store_stats(s, &st);
    assert_int_equal(st.puts_dropped, 85);
    assert_int_equal(st.queue_ops, 17);
    sem_post(&writer_may_go);
    cache_store_flush(s);
    assert_true(cache_store_applied(s, mark));
    assert_false(cache_store_applied(s, cache_store_mark(s) + 1));
    cache_store_stats(s, &st);
    assert_int_equal(st.objects, 15); /* 16 put, 0 deleted */
    assert_int_equal(st.queue_ops, 0);
    assert_false(exists(s, 0));
    assert_true(exists(s, 15));
    assert_false(exists(s, 16));
    cache_store_close(s);
    sem_destroy(&writer_in_cb);
    sem_destroy(&writer_may_go);
}

/* ---- concurrent readers ---- */

#define NREADERS 4
#define NCONC 16

typedef struct reader {
    pthread_t thread;
    cache_store_t *s;
    _Atomic int *stop;
    long reads, bad;
} reader_t;

static size_t conc_len(int n, int v)
{
    return 2000 + (size_t)n * 100 + (size_t)v * 37;
}

static void check_item(reader_t *r, int n, const cache_store_item_t *it)
{
    int mn, mv;
    char meta[64];

    snprintf(meta, sizeof(meta), "%.*s", (int)it->meta_len, (const char *)it->meta);
    if (sscanf(meta, "meta-%d-%d", &mn, &mv) != 2 || mn != n || it->body_len != conc_len(n, mv) ||
        !body_ok(it->body, it->body_len, n, mv))
        r->bad++;
    r->reads++;
}

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    unsigned seed = (unsigned)(uintptr_t)r;

    while (!atomic_load(r->stop)) {
        int n = (int)(rand_r(&seed) % NCONC);
        uint8_t id[CACHE_STORE_ID_LEN];
        cache_store_item_t it;
        cache_store_ref_t *ref;
        make_id(n, id);
        if (rand_r(&seed) % 2) {
            if (cache_store_get(r->s, id, test_alloc, NULL, &it) == 0) {
                check_item(r, n, &it);
                free((void *)it.meta);
            }
        } else if (cache_store_get_ref(r->s, id, &ref, &it) == 0) {
            check_item(r, n, &it);
            cache_store_release(ref);
        }
    }
    return NULL;
}

static void test_concurrent_gets(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 32 * MiB, NULL);
    reader_t readers[NREADERS];
    _Atomic int stop = 0;
    char url[32];

    for (int i = 0; i < NREADERS; i++) {
        readers[i] = (reader_t){.s = s, .stop = &stop};
        assert_int_equal(pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]), 0);
    }
    for (int v = 0; v < 40; v++) {
        for (int n = 0; n < NCONC; n++) {
            snprintf(url, sizeof(url), "h/%d", n);
            assert_int_equal(put_obj(s, n, v, url, "h", NULL, 0, conc_len(n, v), v, 0), 0);
        }
        if (v % 8 == 7) {
            uint8_t id[CACHE_STORE_ID_LEN];
            make_id(v % NCONC, id);
            cache_store_delete(s, id);
        }
        cache_store_flush(s);
    }
    atomic_store(&stop, 1);
    long reads = 0;
    for (int i = 0; i < NREADERS; i++) {
        pthread_join(readers[i].thread, NULL);
        assert_int_equal(readers[i].bad, 0);
        reads += readers[i].reads;
    }
    assert_true(reads > 0);
    print_message("concurrent gets: %ld reads during 40 commits\n", reads);
    cache_store_close(s);
}

/* A held ref pins its snapshot: the writer cannot reuse pages and runs into the map's end. It must drop, not fail. */
static void test_map_full(void **state)
{
    fixture_t *f = *state;
    cache_store_t *s = open_store(f->path, 4 * MiB, NULL);
    uint8_t id[CACHE_STORE_ID_LEN];
    cache_store_ref_t *ref;
    cache_store_item_t it;
    cache_store_stats_t st;

    for (int i = 0; i < 10; i++)
        assert_int_equal(put_obj(s, i, 0, "h/m", "h", NULL, 0, 100 * 1024, i, 0), 0);
    cache_store_flush(s);
    make_id(0, id);
    assert_int_equal(cache_store_get_ref(s, id, &ref, &it), 0);
    for (int i = 10; i < 300; i++) {
        assert_int_equal(put_obj(s, i, 0, "h/m", "h", NULL, 0, 100 * 1024, i, 0), 0);
        if (i % 10 == 9)
            cache_store_flush(s);
    }
    cache_store_flush(s);
    cache_store_stats(s, &st);
    assert_true(st.map_full > 0);
    assert_true(st.puts_dropped > 0);
    assert_true(body_ok(it.body, it.body_len, 0, 0)); /* the snapshot is intact */
    assert_int_equal(it.body_len, 100 * 1024);
    cache_store_release(ref);

    /* with the reader gone, the free pages are usable again */
    for (int i = 300; i < 310; i++)
        assert_int_equal(put_obj(s, i, 0, "h/m", "h", NULL, 0, 100 * 1024, 1000 + i, 0), 0);
    cache_store_flush(s);
    for (int i = 300; i < 310; i++)
        assert_true(exists(s, i));
    cache_store_stats(s, &st);
    assert_true(st.bytes_used <= 4 * MiB);
    cache_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_locked, setup, teardown),
        cmocka_unit_test(test_damaged_records),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsynced_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_size_lowered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soft_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_gets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
