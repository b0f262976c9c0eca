/*
 * store/value.c: DynamoDB attribute values and items on jansson (the contract is in value.h): the checks with
 * DynamoDB's messages, normalization, item sizes, equality and order, and the order-preserving key bytes.
 *
 * Where the words come from. The SerializationException messages are those DynamoDB's deserializer (Coral) answers,
 * as dynalite's test helpers record them against DynamoDB itself (test/helpers.js, assertType: "String", "Blob",
 * "Boolean", "List", "Map<AttributeValue>", "ValueStruct<AttributeValue>"). The ValidationException messages are
 * dynalite's validateAttributeValue (validations/index.js) and its tests run against DynamoDB (test/putItem.js),
 * except where DynamoDB changed since: empty S and B values, and empty members of SS and BS, are allowed since May
 * 2020 ("DynamoDB does not support empty sets, however, empty string and binary values are allowed within a set",
 * the developer guide), where dynalite's validation still rejects them. Nesting: "Nesting Levels have exceeded
 * supported limits: Attributes in the item have nested levels beyond supported limit", an attribute being level 1 and
 * level 32 the deepest value accepted (captured against DynamoDB by a conformance suite; DynamoDB Local's
 * isValidNestedLevel agrees). Attribute names: DynamoDB Local's newAttributeName. Numbers: store/decimal.h.
 *
 * Two passes. DynamoDB deserializes the whole request before it validates anything, so a wrong JSON shape anywhere
 * wins over every ValidationException: shape_*() walk everything first and change nothing, then check_*() validate
 * and normalize in document order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "store/decimal.h"
#include "store/value.h"

/* ---- messages ---- */

#define INVALID "One or more parameter values were invalid: "
#define MSG_EMPTY_AV "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
#define MSG_MULTI_AV "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
#define MSG_NULL_FALSE INVALID "Null attribute value types must have the value of true"
#define MSG_SS_EMPTY INVALID "An string set  may not be empty"
#define MSG_NS_EMPTY INVALID "An number set  may not be empty"
#define MSG_BS_EMPTY INVALID "Binary sets should not be empty"
#define MSG_SS_NULL INVALID "An string set may not have a null string as a member"
#define MSG_BS_NULL INVALID "Binary sets may not contain null or empty values"
#define MSG_NS_DUP "Input collection contains duplicates"
#define MSG_NEST "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit"
#define MSG_ITEM_SIZE "Item size has exceeded the maximum allowed size"
#define MSG_EMPTY_NAME "Empty attribute name"
#define MSG_NAME_SIZE "Attribute name is too large, must be less than 65536 bytes"
#define MSG_ITEM_NULL "Value null at 'item' failed to satisfy constraint: Member must not be null"

#define SER_START_MAP "Start of structure or map found where not expected"
#define SER_FIELD "Unexpected field type"
#define SER_VALUE "Unexpected value type in payload"
#define SER_AV_LIST "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"
#define SER_MAP_LIST "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"
#define SER_BLOB "only base-64-encoded strings are convertible to bytes"
#define SER_BLOB_LIST "Unrecognized collection type class java.nio.ByteBuffer"
#define SER_B64_LAST "Invalid last non-pad Base64 character dectected" /* sic */
#define SER_BOOL_TOKEN "Unexpected token received from parser"

#define NAME_MAX_BYTES 65535
/* The shape pass descends at most this deep (jansson's parser stops at 2048 levels); deeper values are reported as
 * too deeply nested by the validation pass. */
#define SHAPE_DEPTH_MAX 2048

static int fail(int code, char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* A bounded string builder over the caller's error buffer (for messages that list a set's members). */
typedef struct sbuf {
    char *p;
    size_t cap, len;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s, size_t n)
{
    if (b->p == NULL || b->cap == 0)
        return;
    if (b->len + 1 >= b->cap)
        return;
    size_t room = b->cap - 1 - b->len;
    if (n > room)
        n = room;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* ---- types ---- */

static const char *const type_names[] = {NULL, "S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"};

const char *store_type_name(store_type_t t)
{
    if ((int)t <= 0 || (size_t)t >= sizeof(type_names) / sizeof(type_names[0]))
        return NULL;
    return type_names[t];
}

store_type_t store_type_of_name(const char *name, size_t len)
{
    if (name == NULL)
        return STORE_T_NONE;
    for (size_t t = 1; t < sizeof(type_names) / sizeof(type_names[0]); t++) {
        if (strlen(type_names[t]) == len && memcmp(type_names[t], name, len) == 0)
            return (store_type_t)t;
    }
    return STORE_T_NONE;
}

/* Whether a member value has the JSON type its AttributeValue type holds once checked. */
static int member_fits(store_type_t t, const json_t *v)
{
    switch (t) {
    case STORE_T_S:
    case STORE_T_N:
    case STORE_T_B:
        return json_is_string(v);
    case STORE_T_BOOL:
    case STORE_T_NULL:
        return json_is_boolean(v);
    case STORE_T_L:
    case STORE_T_SS:
    case STORE_T_NS:
    case STORE_T_BS:
        return json_is_array(v);
    case STORE_T_M:
        return json_is_object(v);
    default:
        return 0;
    }
}

/* The single member of a checked AttributeValue (its value in *member), or STORE_T_NONE. */
static store_type_t av_member(const json_t *av, json_t **member)
{
    if (!json_is_object(av) || json_object_size(av) != 1)
        return STORE_T_NONE;
    void *it = json_object_iter((json_t *)av);
    const char *key = json_object_iter_key(it);
    json_t *v = json_object_iter_value(it);
    store_type_t t = store_type_of_name(key, json_object_iter_key_len(it));
    if (t == STORE_T_NONE || !member_fits(t, v))
        return STORE_T_NONE;
    if (member != NULL)
        *member = v;
    return t;
}

store_type_t store_value_type(const json_t *av)
{
    return av_member(av, NULL);
}

/* ---- base64 ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* The length of the UTF-8 sequence that starts with c (1 for a stray byte). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c >= 0xF0 && c < 0xF8)
        return 4;
    if (c >= 0xE0)
        return c < 0xF0 ? 3 : 1;
    if (c >= 0xC0)
        return 2;
    return 1;
}

/*
 * DynamoDB's base64 rules for B and BS members, in its order: the length first ("Base64 encoded length is expected a
 * multiple of 4 bytes but found: 5"), then the last character before the padding, which must be of the alphabet and
 * carry no bits beyond the encoded bytes ("=+/=" and "+/+=" are "Invalid last non-pad Base64 character dectected",
 * recorded against DynamoDB), then every other character ("Invalid Base64 character: '!'", the detail DynamoDB gave
 * before it dropped the "'<text>' can not be converted to a Blob: " prefix). At most two '=', only at the end.
 */
static int b64_check(const char *s, size_t len, char *err, size_t errlen)
{
    if (len % 4 != 0)
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "Base64 encoded length is expected a multiple of 4 bytes but found: %zu",
                    len);
    if (len == 0)
        return 0;
    size_t pad = 0;
    while (pad < len && s[len - 1 - pad] == '=')
        pad++;
    if (pad > 2)
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "%s", SER_B64_LAST);
    int last = b64_value((unsigned char)s[len - 1 - pad]);
    if (last < 0 || (pad == 1 && (last & 0x3) != 0) || (pad == 2 && (last & 0xF) != 0))
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "%s", SER_B64_LAST);
    for (size_t i = 0; i < len - 1 - pad; i++) {
        if (b64_value((unsigned char)s[i]) < 0) {
            size_t n = utf8_seq_len((unsigned char)s[i]);
            if (n > len - i)
                n = len - i;
            return fail(STORE_VALUE_ESERIALIZE, err, errlen, "Invalid Base64 character: '%.*s'", (int)n, s + i);
        }
    }
    return 0;
}

size_t store_b64_decoded_size(const char *s, size_t len)
{
    size_t pad = 0;
    while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
        pad++;
    size_t full = len / 4 * 3;
    return full >= pad ? full - pad : 0;
}

size_t store_b64_decode(const char *s, size_t len, uint8_t *out)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            continue; /* padding (the text is checked) */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

json_t *store_b64_string(const uint8_t *p, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = (n + 2) / 3 * 4;
    char *text = malloc(len + 1);
    if (text == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        text[o++] = alphabet[(v >> 18) & 63];
        text[o++] = alphabet[(v >> 12) & 63];
        text[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        text[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    text[o] = '\0';
    json_t *j = json_stringn_nocheck(text, o);
    free(text);
    return j;
}

/* The decoded bytes of a B member: into tmp when they fit, else into *owned (malloc'ed, the caller frees it). NULL
 * when memory ran out. */
static const uint8_t *b64_bytes(const json_t *str, uint8_t *tmp, size_t tmpcap, uint8_t **owned, size_t *n)
{
    const char *s = json_string_value(str);
    size_t len = json_string_length(str);
    size_t need = store_b64_decoded_size(s, len);
    uint8_t *out = tmp;
    *owned = NULL;
    *n = 0;
    if (need > tmpcap) {
        out = malloc(need);
        if (out == NULL)
            return NULL;
        *owned = out;
    }
    *n = store_b64_decode(s, len, out);
    return out;
}

/* ---- pass 1: shapes ---- */

/* A JSON value where DynamoDB wants a String (S, N, members of SS and NS). */
static int shape_string(const json_t *v, char *err, size_t errlen)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
    case JSON_NULL:
        return 0;
    case JSON_TRUE:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "TRUE_VALUE cannot be converted to String");
    case JSON_FALSE:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "FALSE_VALUE cannot be converted to String");
    case JSON_INTEGER:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "NUMBER_VALUE cannot be converted to String");
    case JSON_REAL:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "DECIMAL_VALUE cannot be converted to String");
    case JSON_ARRAY:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "Unrecognized collection type class java.lang.String");
    case JSON_OBJECT:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_START_MAP);
    }
    return 0;
}

/* A Blob (B, members of BS): a base64 string. */
static int shape_blob(const json_t *v, char *err, size_t errlen)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return 0;
    case JSON_STRING:
        return b64_check(json_string_value(v), json_string_length(v), err, errlen);
    case JSON_ARRAY:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_BLOB_LIST);
    case JSON_OBJECT:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_START_MAP);
    default:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_BLOB);
    }
}

/* The strings DynamoDB's deserializer takes for a Boolean: 1 true, 0 false, -1 none of them. */
static int bool_word(const char *s, size_t len)
{
    static const char *const yes[] = {"true", "1", "yes"}, *const no[] = {"false", "0", "no"};
    for (size_t i = 0; i < 3; i++) {
        if (strlen(yes[i]) == len && strncasecmp(yes[i], s, len) == 0)
            return 1;
        if (strlen(no[i]) == len && strncasecmp(no[i], s, len) == 0)
            return 0;
    }
    return -1;
}

/* A Boolean (BOOL, NULL). */
static int shape_bool(const json_t *v, char *err, size_t errlen)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_TRUE:
    case JSON_FALSE:
        return 0;
    case JSON_STRING:
        if (bool_word(json_string_value(v), json_string_length(v)) < 0)
            return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_BOOL_TOKEN);
        return 0;
    case JSON_INTEGER:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "NUMBER_VALUE cannot be converted to Boolean");
    case JSON_REAL:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "DECIMAL_VALUE cannot be converted to Boolean");
    case JSON_ARRAY:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, "Unrecognized collection type class java.lang.Boolean");
    case JSON_OBJECT:
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_START_MAP);
    }
    return 0;
}

static int shape_av(const json_t *av, int depth, char *err, size_t errlen);

/* A List member (L, SS, NS, BS) must be an array. */
static int shape_list_itself(const json_t *v, char *err, size_t errlen)
{
    if (json_is_array(v) || json_is_null(v))
        return 0;
    if (json_is_object(v))
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_START_MAP);
    return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_FIELD);
}

/* A Map<String, AttributeValue> (M, an item). */
static int shape_map(const json_t *v, int depth, char *err, size_t errlen)
{
    if (json_is_null(v))
        return 0;
    if (json_is_array(v))
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_MAP_LIST);
    if (!json_is_object(v))
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_FIELD);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value)
    {
        int rc = shape_av(value, depth + 1, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One AttributeValue (a structure): each member of a known type as that type wants; other members are ignored. */
static int shape_av(const json_t *av, int depth, char *err, size_t errlen)
{
    if (av == NULL || json_is_null(av))
        return 0;
    if (json_is_array(av))
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_AV_LIST);
    if (!json_is_object(av))
        return fail(STORE_VALUE_ESERIALIZE, err, errlen, SER_VALUE);
    if (depth > SHAPE_DEPTH_MAX)
        return 0;
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)av, key, klen, v)
    {
        store_type_t t = store_type_of_name(key, klen);
        int rc = 0;
        size_t i;
        json_t *e;
        switch (t) {
        case STORE_T_S:
        case STORE_T_N:
            rc = shape_string(v, err, errlen);
            break;
        case STORE_T_B:
            rc = shape_blob(v, err, errlen);
            break;
        case STORE_T_BOOL:
        case STORE_T_NULL:
            rc = shape_bool(v, err, errlen);
            break;
        case STORE_T_SS:
        case STORE_T_NS:
        case STORE_T_BS:
        case STORE_T_L:
            rc = shape_list_itself(v, err, errlen);
            if (rc != 0 || !json_is_array(v))
                break;
            json_array_foreach(v, i, e)
            {
                rc = t == STORE_T_BS  ? shape_blob(e, err, errlen)
                     : t == STORE_T_L ? shape_av(e, depth + 1, err, errlen)
                                      : shape_string(e, err, errlen);
                if (rc != 0)
                    break;
            }
            break;
        case STORE_T_M:
            rc = shape_map(v, depth, err, errlen);
            break;
        case STORE_T_NONE:
            break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int store_value_check_shape(const json_t *av, char *err, size_t errlen)
{
    return shape_av(av, 1, err, errlen);
}

int store_item_check_shape(const json_t *item, char *err, size_t errlen)
{
    if (item == NULL || json_is_null(item))
        return 0;
    return shape_map(item, 0, err, errlen);
}

/* ---- pass 2: values ---- */

static int num_error(store_num_err_t e, const char *text, size_t len, char *err, size_t errlen)
{
    if (e == STORE_NUM_ESYNTAX && len > 0)
        return fail(STORE_VALUE_EINVALID, err, errlen, "%s: %.*s", store_num_strerror(e), (int)len, text);
    return fail(STORE_VALUE_EINVALID, err, errlen, "%s", store_num_strerror(e));
}

/* Parses and normalizes one number (an N member, a member of NS); *out gets the number. */
static int check_number(json_t *str, store_num_t *out, char *err, size_t errlen)
{
    if (!json_is_string(str))
        return fail(STORE_VALUE_EINVALID, err, errlen, "%s", store_num_strerror(STORE_NUM_ESYNTAX));
    const char *s = json_string_value(str);
    size_t len = json_string_length(str);
    store_num_err_t e = store_num_parse(s, len, out);
    if (e != STORE_NUM_OK)
        return num_error(e, s, len, err, errlen);
    char text[STORE_NUM_TEXT_MAX];
    size_t n = store_num_format(out, text);
    if (n != len || memcmp(text, s, n) != 0)
        json_string_setn_nocheck(str, text, n);
    return 0;
}

typedef struct span {
    const char *p;
    size_t n;
} span_t;

static int span_cmp(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = n > 0 ? memcmp(x->p, y->p, n) : 0;
    if (c != 0)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* Whether the strings of a set (SS, or BS as checked, canonical, base64) hold a duplicate. -1 when out of memory. */
static int strings_have_duplicate(const json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n < 2)
        return 0;
    span_t *v = malloc(n * sizeof(*v));
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        v[i].p = json_string_value(e);
        v[i].n = json_string_length(e);
    }
    qsort(v, n, sizeof(*v), span_cmp);
    int dup = 0;
    for (size_t i = 1; i < n && !dup; i++)
        dup = span_cmp(&v[i - 1], &v[i]) == 0;
    free(v);
    return dup;
}

static int num_ptr_cmp(const void *a, const void *b)
{
    return store_num_cmp((const store_num_t *)a, (const store_num_t *)b);
}

/* "Input collection [a, a] contains duplicates." lists every member as given, ", " between them. */
static int dup_message(const json_t *arr, const char *before, const char *after, char *err, size_t errlen)
{
    sbuf_t b = {err, errlen, 0};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    sb_str(&b, before);
    sb_str(&b, "[");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        if (i > 0)
            sb_str(&b, ", ");
        sb_add(&b, json_string_value(e), json_string_length(e));
    }
    sb_str(&b, "]");
    sb_str(&b, after);
    return STORE_VALUE_EINVALID;
}

static int check_set(store_type_t t, json_t *arr, char *err, size_t errlen)
{
    size_t n = json_array_size(arr), i;
    json_t *e;
    if (n == 0)
        return fail(STORE_VALUE_EINVALID, err, errlen, "%s",
                    t == STORE_T_SS   ? MSG_SS_EMPTY
                    : t == STORE_T_NS ? MSG_NS_EMPTY
                                      : MSG_BS_EMPTY);
    if (t == STORE_T_NS) {
        store_num_t *nums = malloc(n * sizeof(*nums));
        if (nums == NULL)
            return fail(STORE_VALUE_EINVALID, err, errlen, "out of memory");
        json_array_foreach(arr, i, e)
        {
            int rc = check_number(e, &nums[i], err, errlen);
            if (rc != 0) {
                free(nums);
                return rc;
            }
        }
        qsort(nums, n, sizeof(*nums), num_ptr_cmp);
        int dup = 0;
        for (i = 1; i < n && !dup; i++)
            dup = store_num_cmp(&nums[i - 1], &nums[i]) == 0;
        free(nums);
        return dup ? fail(STORE_VALUE_EINVALID, err, errlen, MSG_NS_DUP) : 0;
    }
    json_array_foreach(arr, i, e)
    {
        if (!json_is_string(e))
            return fail(STORE_VALUE_EINVALID, err, errlen, "%s", t == STORE_T_SS ? MSG_SS_NULL : MSG_BS_NULL);
    }
    int dup = strings_have_duplicate(arr);
    if (dup < 0)
        return fail(STORE_VALUE_EINVALID, err, errlen, "out of memory");
    if (dup && t == STORE_T_SS)
        return dup_message(arr, INVALID "Input collection ", " contains duplicates.", err, errlen);
    if (dup)
        return dup_message(arr, INVALID "Input collection ", "of type BS contains duplicates.", err, errlen);
    return 0;
}

/* The members of a container one level down: level + 1 must stay within STORE_DEPTH_MAX. */
static int check_children_level(int level, size_t count, char *err, size_t errlen)
{
    if (count > 0 && level + 1 > STORE_DEPTH_MAX)
        return fail(STORE_VALUE_EINVALID, err, errlen, MSG_NEST);
    return 0;
}

/* Validates and normalizes an AttributeValue whose shape passed, at nesting level `level` (an attribute is 1). */
static int check_av(json_t *av, int level, char *err, size_t errlen)
{
    if (av == NULL || !json_is_object(av))
        return fail(STORE_VALUE_EINVALID, err, errlen, MSG_EMPTY_AV);

    /* Drop what DynamoDB's deserializer never sees: null members and members of no known type. */
    const char *key;
    size_t klen;
    json_t *v;
    void *tmp;
    json_object_keylen_foreach_safe(av, tmp, key, klen, v)
    {
        if (json_is_null(v) || store_type_of_name(key, klen) == STORE_T_NONE)
            json_object_deln(av, key, klen);
    }
    size_t types = json_object_size(av);
    if (types == 0)
        return fail(STORE_VALUE_EINVALID, err, errlen, MSG_EMPTY_AV);

    for (void *it = json_object_iter(av); it != NULL; it = json_object_iter_next(av, it)) {
        store_type_t t = store_type_of_name(json_object_iter_key(it), json_object_iter_key_len(it));
        json_t *m = json_object_iter_value(it);
        int rc = 0;
        store_num_t num;
        switch (t) {
        case STORE_T_N:
            rc = check_number(m, &num, err, errlen);
            break;
        case STORE_T_BOOL:
        case STORE_T_NULL:
            if (json_is_string(m)) {
                int b = bool_word(json_string_value(m), json_string_length(m));
                json_object_iter_set_new(av, it, json_boolean(b > 0));
                m = json_object_iter_value(it);
            }
            if (t == STORE_T_NULL && !json_is_true(m))
                rc = fail(STORE_VALUE_EINVALID, err, errlen, MSG_NULL_FALSE);
            break;
        case STORE_T_SS:
        case STORE_T_NS:
        case STORE_T_BS:
            rc = check_set(t, m, err, errlen);
            break;
        case STORE_T_L: {
            size_t i;
            json_t *e;
            rc = check_children_level(level, json_array_size(m), err, errlen);
            json_array_foreach(m, i, e)
            {
                if (rc != 0)
                    break;
                rc = check_av(e, level + 1, err, errlen);
            }
            break;
        }
        case STORE_T_M: {
            const char *mk;
            json_t *mv;
            rc = check_children_level(level, json_object_size(m), err, errlen);
            json_object_foreach(m, mk, mv)
            {
                if (rc != 0)
                    break;
                rc = check_av(mv, level + 1, err, errlen);
            }
            break;
        }
        default: /* S and B: any string of the right shape */
            break;
        }
        if (rc != 0)
            return rc;
    }
    if (types > 1)
        return fail(STORE_VALUE_EINVALID, err, errlen, MSG_MULTI_AV);
    return 0;
}

int store_value_check(json_t *av, char *err, size_t errlen)
{
    int rc = shape_av(av, 1, err, errlen);
    if (rc != 0)
        return rc;
    return check_av(av, 1, err, errlen);
}

int store_item_check(json_t *item, char *err, size_t errlen)
{
    if (item == NULL || json_is_null(item))
        return fail(STORE_VALUE_EINVALID, err, errlen, MSG_ITEM_NULL);
    int rc = shape_map(item, 0, err, errlen);
    if (rc != 0)
        return rc;
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(item, key, klen, v)
    {
        if (klen == 0)
            return fail(STORE_VALUE_EINVALID, err, errlen, MSG_EMPTY_NAME);
        if (klen > NAME_MAX_BYTES)
            return fail(STORE_VALUE_EINVALID, err, errlen, MSG_NAME_SIZE);
        rc = check_av(v, 1, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (store_item_size(item) > STORE_ITEM_MAX)
        return fail(STORE_VALUE_EINVALID, err, errlen, MSG_ITEM_SIZE);
    return 0;
}

/* ---- keys: checks ---- */

int store_key_check(const json_t *av, store_type_t want, const char *name, char *err, size_t errlen)
{
    json_t *m = NULL;
    store_type_t t = av_member(av, &m);
    if (name == NULL)
        name = "";
    if (t != want) {
        const char *actual = store_type_name(t);
        return fail(STORE_VALUE_EINVALID, err, errlen, INVALID "Type mismatch for key %s expected: %s actual: %s", name,
                    store_type_name(want) != NULL ? store_type_name(want) : "", actual != NULL ? actual : "");
    }
    if ((t == STORE_T_S || t == STORE_T_B) && json_string_length(m) == 0)
        return fail(STORE_VALUE_EINVALID, err, errlen,
                    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain "
                    "an empty %s value. Key: %s",
                    t == STORE_T_S ? "string" : "binary", name);
    return 0;
}

int store_key_check_size(const json_t *av, int range, char *err, size_t errlen)
{
    json_t *m = NULL;
    store_type_t t = av_member(av, &m);
    size_t size;
    if (t == STORE_T_S)
        size = json_string_length(m);
    else if (t == STORE_T_B)
        size = store_b64_decoded_size(json_string_value(m), json_string_length(m));
    else
        return 0;
    if (!range && size > STORE_HASH_KEY_MAX)
        return fail(STORE_VALUE_EINVALID, err, errlen, INVALID "Size of hashkey has exceeded the maximum size limit of%d bytes",
                    STORE_HASH_KEY_MAX);
    if (range && size > STORE_RANGE_KEY_MAX)
        return fail(STORE_VALUE_EINVALID, err, errlen,
                    INVALID "Aggregated size of all range keys has exceeded the size limit of %d bytes", STORE_RANGE_KEY_MAX);
    return 0;
}

/* ---- sizes ---- */

/* The length of DynamoDB's encoding of a number (value.h tells the rule). */
static size_t num_size(const json_t *str)
{
    store_num_t n;
    const char *s = json_string_value(str);
    size_t len = json_string_length(str);
    if (store_num_parse(s, len, &n) != STORE_NUM_OK)
        return len / 2 + 1; /* not a checked value: DynamoDB's estimate */
    if (n.sign == 0)
        return 1;
    int digits = 0;
    for (unsigned __int128 c = n.coef; c != 0; c /= 10)
        digits++;
    int32_t first = n.exp + digits - 1; /* the exponent of the first significant digit */
    int lone = (first & 1) == 0;        /* an even exponent starts a new base-100 digit alone */
    size_t centesimal = (size_t)(digits + lone + 1) / 2;
    return 1 + centesimal + (n.sign < 0 && centesimal < 20 ? 1 : 0);
}

size_t store_value_size(const json_t *av)
{
    json_t *m = NULL;
    size_t size = 0, i;
    json_t *e;
    switch (av_member(av, &m)) {
    case STORE_T_S:
        return json_string_length(m);
    case STORE_T_N:
        return num_size(m);
    case STORE_T_B:
        return store_b64_decoded_size(json_string_value(m), json_string_length(m));
    case STORE_T_BOOL:
    case STORE_T_NULL:
        return 1;
    case STORE_T_SS:
        json_array_foreach(m, i, e) size += json_string_length(e);
        return size;
    case STORE_T_NS:
        json_array_foreach(m, i, e) size += num_size(e);
        return size;
    case STORE_T_BS:
        json_array_foreach(m, i, e) size += store_b64_decoded_size(json_string_value(e), json_string_length(e));
        return size;
    case STORE_T_L:
        json_array_foreach(m, i, e) size += 1 + store_value_size(e);
        return 3 + size;
    case STORE_T_M: {
        const char *key;
        size_t klen;
        json_object_keylen_foreach(m, key, klen, e) size += 1 + klen + store_value_size(e);
        return 3 + size;
    }
    case STORE_T_NONE:
        break;
    }
    return 0;
}

size_t store_item_size(const json_t *item)
{
    const char *key;
    size_t klen, size = 0;
    json_t *v;
    if (!json_is_object(item))
        return 0;
    json_object_keylen_foreach((json_t *)item, key, klen, v) size += klen + store_value_size(v);
    return size;
}

/* ---- equality and order ---- */

static int bytes_cmp(const void *a, size_t an, const void *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c < 0 ? -1 : 1;
    return an < bn ? -1 : an > bn;
}

static int string_cmp(const json_t *a, const json_t *b)
{
    return bytes_cmp(json_string_value(a), json_string_length(a), json_string_value(b), json_string_length(b));
}

static int number_cmp(const json_t *a, const json_t *b)
{
    store_num_t x, y;
    if (store_num_parse(json_string_value(a), json_string_length(a), &x) != STORE_NUM_OK ||
        store_num_parse(json_string_value(b), json_string_length(b), &y) != STORE_NUM_OK)
        return string_cmp(a, b); /* not checked values: their text */
    return store_num_cmp(&x, &y);
}

static int binary_cmp(const json_t *a, const json_t *b)
{
    uint8_t ta[256], tb[256], *oa, *ob;
    size_t na, nb;
    const uint8_t *pa = b64_bytes(a, ta, sizeof(ta), &oa, &na);
    const uint8_t *pb = b64_bytes(b, tb, sizeof(tb), &ob, &nb);
    int c = pa != NULL && pb != NULL ? bytes_cmp(pa, na, pb, nb) : string_cmp(a, b); /* out of memory: the text */
    free(oa);
    free(ob);
    return c;
}

/* A set member as comparable bytes: the string (SS), the number's key (NS) or the decoded bytes (BS). */
typedef struct blob {
    const uint8_t *p;
    size_t n;
    uint8_t *owned;
} blob_t;

static int blob_cmp(const void *a, const void *b)
{
    const blob_t *x = a, *y = b;
    return bytes_cmp(x->p, x->n, y->p, y->n);
}

static void blobs_free(blob_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].owned);
    free(v);
}

/* The members of a set as sorted blobs; NULL when out of memory. */
static blob_t *set_blobs(store_type_t t, const json_t *arr)
{
    size_t n = json_array_size(arr);
    blob_t *v = calloc(n > 0 ? n : 1, sizeof(*v));
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        if (t == STORE_T_SS) {
            v[i].p = (const uint8_t *)json_string_value(e);
            v[i].n = json_string_length(e);
        } else if (t == STORE_T_NS) {
            store_num_t num;
            v[i].owned = malloc(STORE_NUM_KEY_MAX);
            if (v[i].owned == NULL) {
                blobs_free(v, n);
                return NULL;
            }
            if (store_num_parse(json_string_value(e), json_string_length(e), &num) == STORE_NUM_OK) {
                v[i].n = store_num_key(&num, v[i].owned);
                v[i].p = v[i].owned;
            } else { /* not a checked value: its text */
                v[i].p = (const uint8_t *)json_string_value(e);
                v[i].n = json_string_length(e);
            }
        } else if (store_b64_decoded_size(json_string_value(e), json_string_length(e)) == 0) {
            v[i].p = (const uint8_t *)"";
            v[i].n = 0;
        } else {
            v[i].p = b64_bytes(e, NULL, 0, &v[i].owned, &v[i].n);
            if (v[i].p == NULL) {
                blobs_free(v, n);
                return NULL;
            }
        }
    }
    qsort(v, n, sizeof(*v), blob_cmp);
    return v;
}

static int set_equal(store_type_t t, const json_t *a, const json_t *b)
{
    size_t n = json_array_size(a);
    if (n != json_array_size(b))
        return 0;
    blob_t *x = set_blobs(t, a), *y = set_blobs(t, b);
    int eq = x != NULL && y != NULL;
    for (size_t i = 0; eq && i < n; i++)
        eq = blob_cmp(&x[i], &y[i]) == 0;
    if (x != NULL)
        blobs_free(x, n);
    if (y != NULL)
        blobs_free(y, n);
    return eq;
}

int store_value_equal(const json_t *a, const json_t *b)
{
    json_t *ma = NULL, *mb = NULL;
    store_type_t t = av_member(a, &ma);
    if (t == STORE_T_NONE || av_member(b, &mb) != t)
        return 0;
    switch (t) {
    case STORE_T_S:
        return string_cmp(ma, mb) == 0;
    case STORE_T_N:
        return number_cmp(ma, mb) == 0;
    case STORE_T_B:
        return binary_cmp(ma, mb) == 0;
    case STORE_T_BOOL:
    case STORE_T_NULL:
        return json_is_true(ma) == json_is_true(mb);
    case STORE_T_SS:
    case STORE_T_NS:
    case STORE_T_BS:
        return set_equal(t, ma, mb);
    case STORE_T_L: {
        size_t n = json_array_size(ma);
        if (n != json_array_size(mb))
            return 0;
        for (size_t i = 0; i < n; i++) {
            if (!store_value_equal(json_array_get(ma, i), json_array_get(mb, i)))
                return 0;
        }
        return 1;
    }
    case STORE_T_M: {
        const char *key;
        size_t klen;
        json_t *v;
        if (json_object_size(ma) != json_object_size(mb))
            return 0;
        json_object_keylen_foreach(ma, key, klen, v)
        {
            const json_t *w = json_object_getn(mb, key, klen);
            if (w == NULL || !store_value_equal(v, w))
                return 0;
        }
        return 1;
    }
    case STORE_T_NONE:
        break;
    }
    return 0;
}

int store_value_compare(const json_t *a, const json_t *b, int *cmp)
{
    json_t *ma = NULL, *mb = NULL;
    store_type_t t = av_member(a, &ma);
    if (av_member(b, &mb) != t)
        return -1;
    int c;
    switch (t) {
    case STORE_T_S:
        c = string_cmp(ma, mb);
        break;
    case STORE_T_N:
        c = number_cmp(ma, mb);
        break;
    case STORE_T_B:
        c = binary_cmp(ma, mb);
        break;
    default:
        return -1;
    }
    if (cmp != NULL)
        *cmp = c < 0 ? -1 : c > 0;
    return 0;
}

/* ---- keys: bytes ---- */

/* The raw key bytes of a key value: into tmp (STORE_NUM_KEY_MAX bytes, for N), the string itself (S), or decoded
 * into *owned (B; the caller frees it). Returns NULL when av is not a key type (or memory ran out). */
static const uint8_t *key_bytes(const json_t *av, uint8_t *tmp, uint8_t **owned, size_t *n)
{
    json_t *m = NULL;
    *owned = NULL;
    switch (av_member(av, &m)) {
    case STORE_T_S:
        *n = json_string_length(m);
        return (const uint8_t *)json_string_value(m);
    case STORE_T_N: {
        store_num_t num;
        if (store_num_parse(json_string_value(m), json_string_length(m), &num) != STORE_NUM_OK)
            return NULL;
        *n = store_num_key(&num, tmp);
        return tmp;
    }
    case STORE_T_B:
        return b64_bytes(m, tmp, STORE_NUM_KEY_MAX, owned, n);
    default:
        return NULL;
    }
}

size_t store_key_encode(const json_t *av, uint8_t *buf, size_t cap)
{
    uint8_t tmp[STORE_NUM_KEY_MAX], *owned;
    size_t n;
    const uint8_t *p = key_bytes(av, tmp, &owned, &n);
    if (p == NULL)
        return 0;
    if (n <= cap && n > 0)
        memcpy(buf, p, n);
    free(owned);
    return n;
}

size_t store_key_encode_pair(const json_t *pk, const json_t *sk, uint8_t *buf, size_t cap)
{
    uint8_t tp[STORE_NUM_KEY_MAX], ts[STORE_NUM_KEY_MAX], *op = NULL, *os = NULL;
    size_t np, ns = 0;
    const uint8_t *p = key_bytes(pk, tp, &op, &np), *s = NULL;
    if (p == NULL)
        return 0;
    if (sk != NULL) {
        s = key_bytes(sk, ts, &os, &ns);
        if (s == NULL) {
            free(op);
            return 0;
        }
    }
    size_t len = np + 2 + ns;
    for (size_t i = 0; i < np; i++)
        len += p[i] == 0x00;
    if (len <= cap) {
        size_t o = 0;
        for (size_t i = 0; i < np; i++) {
            buf[o++] = p[i];
            if (p[i] == 0x00)
                buf[o++] = 0xFF;
        }
        buf[o++] = 0x00;
        buf[o++] = 0x01;
        if (ns > 0)
            memcpy(buf + o, s, ns);
    }
    free(op);
    free(os);
    return len;
}

json_t *store_key_decode(store_type_t t, const uint8_t *buf, size_t len)
{
    json_t *v = NULL;
    switch (t) {
    case STORE_T_S:
        v = json_stringn((const char *)buf, len); /* NULL unless UTF-8 */
        break;
    case STORE_T_N: {
        store_num_t num;
        char text[STORE_NUM_TEXT_MAX];
        if (store_num_from_key(buf, len, &num) != 0)
            return NULL;
        v = json_stringn_nocheck(text, store_num_format(&num, text));
        break;
    }
    case STORE_T_B:
        v = store_b64_string(buf, len);
        break;
    default:
        return NULL;
    }
    if (v == NULL)
        return NULL;
    json_t *av = json_object();
    if (av == NULL || json_object_set_new(av, store_type_name(t), v) != 0) {
        json_decref(av);
        return NULL;
    }
    return av;
}

int store_key_decode_pair(const uint8_t *buf, size_t len, store_type_t pk_type, store_type_t sk_type, json_t **pk, json_t **sk)
{
    *pk = NULL;
    *sk = NULL;
    uint8_t *raw = malloc(len > 0 ? len : 1);
    if (raw == NULL)
        return -1;
    size_t n = 0, i = 0;
    int ended = 0;
    while (i < len) {
        if (buf[i] != 0x00) {
            raw[n++] = buf[i++];
            continue;
        }
        if (i + 1 >= len)
            break;
        if (buf[i + 1] == 0xFF) {
            raw[n++] = 0x00;
            i += 2;
        } else if (buf[i + 1] == 0x01) {
            i += 2;
            ended = 1;
            break;
        } else {
            break;
        }
    }
    if (ended && (sk_type != STORE_T_NONE || i == len)) {
        *pk = store_key_decode(pk_type, raw, n);
        if (*pk != NULL && sk_type != STORE_T_NONE) {
            *sk = store_key_decode(sk_type, buf + i, len - i);
            if (*sk == NULL) {
                json_decref(*pk);
                *pk = NULL;
            }
        }
    }
    free(raw);
    return *pk != NULL ? 0 : -1;
}
