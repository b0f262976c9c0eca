/*
 * A libFuzzer target for the REST origin's JSON (proxy/rest_json.c): the exact-text scanner that reads request bodies
 * (untrusted: a PUT or PATCH body goes through it before the store sees anything) and the conversions between plain
 * JSON and DynamoDB attribute values.
 *
 * Input: the bytes of a body, as they are. Beside the sanitizers' findings, the target aborts when a property does not
 * hold:
 *   - what px_js_is_whole accepts as an object converts (px_to_ddb) into text that jansson parses as a JSON object
 *     whose members are all attribute values ({"S": ...}, {"N": ...}, ...): the store then gets valid JSON;
 *   - walking an accepted object (px_js_iter / px_js_next) gives at least as many members as jansson counts (it keeps
 *     duplicates, jansson one of each), and every member name unquotes;
 *   - px_js_get finds the "M" of what px_to_ddb made;
 *   - px_to_plain_map (the way back, on the store's answers) survives any object it is given and, on what px_to_ddb
 *     made, gives text jansson parses.
 * Everything is in one h2o memory pool, cleared after each input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "proxy/internal.h"

#define CHECK(cond, what)                                                                                                          \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "fuzz_rest_json: %s:%d: %s\n", __FILE__, __LINE__, (what));                                            \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

static h2o_req_t req; /* only its pool is used */

/* Parses text as JSON (any value; integers as doubles: jansson refuses those over 64 bits, the REST origin keeps them
 * exactly); NULL when jansson refuses it. */
static json_t *parse(const char *text, size_t len)
{
    return json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
}

static void check_attribute_values(const json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        CHECK(json_is_object(v) && json_object_size(v) == 1, "a member that is not an attribute value");
        const char *type = json_object_iter_key(json_object_iter(v));
        CHECK(strlen(type) <= 4 && strspn(type, "SNBOLMU") == strlen(type), "an unknown attribute type");
        if (strcmp(type, "M") == 0)
            check_attribute_values(json_object_get(v, "M"));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    h2o_iovec_t body = h2o_iovec_init(data, size);

    h2o_mem_init_pool(&req.pool);
    if (px_js_is_whole(body, '{')) {
        /* the way in, as rest.c does it: the object from its '{' (white space before it skipped) */
        const char *start = memchr(data, '{', size);
        h2o_iovec_t obj = h2o_iovec_init(start, size - (size_t)(start - (const char *)data));
        px_rb_t b = px_rb_new(&req, 64);
        px_to_ddb(&b, obj);
        h2o_iovec_t ddb = px_rb_done(&b);
        json_t *j = parse(ddb.base, ddb.len), *plain = parse((const char *)data, size);
        /* the scanner is laxer than jansson on string escapes (a lone surrogate \udc00 passes it): the store's parser
         * then refuses the request (a 400 all the same); what jansson takes must convert into what it takes */
        if (plain != NULL)
            CHECK(j != NULL && json_is_object(json_object_get(j, "M")),
                  "px_to_ddb made text jansson does not parse as {\"M\": {...}}");
        if (j != NULL)
            check_attribute_values(json_object_get(j, "M"));
        /* the members */
        px_js_it_t it = px_js_iter(body);
        h2o_iovec_t name, val;
        size_t n = 0;
        while (px_js_next(&it, &name, &val)) {
            h2o_iovec_t key = px_js_unquote(&req.pool, name);
            CHECK(key.base != NULL, "a member name that does not unquote");
            ++n;
        }
        if (plain != NULL && json_is_object(plain))
            CHECK(n >= json_object_size(plain), "fewer members walked than jansson counts"); /* duplicates: jansson keeps one */
        /* and back */
        px_rb_t back = px_rb_new(&req, 64);
        h2o_iovec_t m = px_js_get(ddb, "M");
        CHECK(m.len != 0, "px_js_get does not find M");
        px_to_plain_map(&back, m);
        h2o_iovec_t out = px_rb_done(&back);
        json_t *again = parse(out.base, out.len);
        if (plain != NULL)
            CHECK(again != NULL && json_is_object(again), "px_to_plain_map made text jansson does not parse as an object");
        json_decref(again);
        json_decref(plain);
        json_decref(j);
    } else if (size != 0 && data[0] == '{') {
        /* the way back on anything shaped like an object: it must only survive */
        px_rb_t back = px_rb_new(&req, 64);
        px_to_plain_map(&back, body);
    }
    h2o_mem_clear_pool(&req.pool);
    return 0;
}
