/*
 * The fixture of the item store's unit tests (test_store*.c): a store over a real LMDB environment in a fresh
 * mkdtemp() directory per test, and a synchronous call: writes are answered on the store's writer thread, so
 * store_call_wait() waits for the answer with a semaphore. Included by each test file (one binary each).
 */
#ifndef EDGEPROXY_TEST_STORE_FIXTURE_H
#define EDGEPROXY_TEST_STORE_FIXTURE_H

#include <ftw.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/store.h"

typedef struct fixture {
    char dir[64];
    store_t *s;
} fixture_t;

typedef struct result {
    sem_t sem;
    int status;
    char *body;
} result_t;

static inline void fixture_on_done(void *data, int status, char *body, size_t len)
{
    result_t *r = data;
    assert_int_equal(strlen(body), len);
    r->status = status;
    r->body = body;
    sem_post(&r->sem);
}

/* Runs one operation (req as it is) and waits for its answer; returns the status, *body the answer (freed by the
 * caller; NULL: freed here). */
static inline int store_call_wait(store_t *s, const char *op, const char *req, char **body)
{
    result_t r = {.status = -1};
    sem_init(&r.sem, 0, 0);
    store_call(s, op, req, strlen(req), fixture_on_done, &r);
    sem_wait(&r.sem);
    sem_destroy(&r.sem);
    if (body != NULL)
        *body = r.body;
    else
        free(r.body);
    return r.status;
}

static inline int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256];
    strcpy(f->dir, "/tmp/itemstore-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    store_options_t o = {.dir = f->dir, .map_size = 64 << 20};
    if (store_open(&f->s, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int fixture_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(f->s);
    nftw(f->dir, fixture_rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

#define S(state) (((fixture_t *)*(state))->s)

#endif
