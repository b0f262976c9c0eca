/*
 * store/schema.c: schema validation of items (store.h's store_attr_rule_t): the rules are compiled once by store_open
 * (types resolved, bounds and numeric enums parsed as exact decimals, patterns compiled with regcomp) and checked by
 * st_item_write on every item written. A broken rule is a ValidationException naming the table's attribute:
 *   One or more parameter values were invalid: Schema validation failed for attribute "age": must be at most 150
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/decimal.h"
#include "store/internal.h"

struct st_rule {
    char *name;
    store_type_t type; /* STORE_T_NONE: any */
    int required;
    int has_min, has_max;
    store_num_t min, max;
    long min_length, max_length;
    char **enums; /* copies */
    store_num_t *enum_nums;
    size_t nenums;
    int has_re;
    regex_t re;
    char *pattern;
};

struct st_rules {
    char *table;
    st_rule_t *attrs;
    size_t n;
};

/* Compiles one rule; 0, or -1 with err set. */
static int compile_rule(const char *table, const store_attr_rule_t *in, st_rule_t *r, char *err, size_t errlen)
{
    store_num_err_t ne;
#define BAD(...)                                                                                                                   \
    do {                                                                                                                           \
        int n_ = snprintf(err, errlen, "store.tables.%s.attributes.%s: ", table, in->name);                                        \
        snprintf(err + (n_ > 0 && (size_t)n_ < errlen ? (size_t)n_ : 0),                                                           \
                 errlen - (n_ > 0 && (size_t)n_ < errlen ? (size_t)n_ : 0), __VA_ARGS__);                                          \
        return -1;                                                                                                                 \
    } while (0)

    memset(r, 0, sizeof(*r));
    r->min_length = in->min_length, r->max_length = in->max_length;
    r->required = in->required;
    if ((r->name = strdup(in->name)) == NULL)
        BAD("out of memory");
    if (in->type != NULL && (r->type = store_type_of_name(in->type, strlen(in->type))) == STORE_T_NONE)
        BAD("unknown type %s (use S, N, B, BOOL, NULL, L, M, SS, NS or BS)", in->type);
    if ((in->min != NULL || in->max != NULL) && r->type != STORE_T_N)
        BAD("min and max need type: N");
    if (in->min != NULL && (ne = store_num_parse(in->min, strlen(in->min), &r->min)) != 0)
        BAD("min: %s", store_num_strerror(ne));
    if (in->max != NULL && (ne = store_num_parse(in->max, strlen(in->max), &r->max)) != 0)
        BAD("max: %s", store_num_strerror(ne));
    r->has_min = in->min != NULL, r->has_max = in->max != NULL;
    if ((in->min_length >= 0 || in->max_length >= 0) &&
        (r->type == STORE_T_N || r->type == STORE_T_BOOL || r->type == STORE_T_NULL))
        BAD("min_length and max_length are for strings, binaries, lists, maps and sets");
    if (in->nenums != 0) {
        if (r->type != STORE_T_S && r->type != STORE_T_N)
            BAD("enum needs type: S or N");
        r->enums = calloc(in->nenums, sizeof(*r->enums));
        r->enum_nums = calloc(in->nenums, sizeof(*r->enum_nums));
        if (r->enums == NULL || r->enum_nums == NULL)
            BAD("out of memory");
        r->nenums = in->nenums;
        for (size_t i = 0; i != in->nenums; ++i) {
            if ((r->enums[i] = strdup(in->enums[i])) == NULL)
                BAD("out of memory");
            if (r->type == STORE_T_N && (ne = store_num_parse(in->enums[i], strlen(in->enums[i]), &r->enum_nums[i])) != 0)
                BAD("enum value %s: %s", in->enums[i], store_num_strerror(ne));
        }
    }
    if (in->pattern != NULL) {
        if (r->type != STORE_T_S)
            BAD("pattern needs type: S");
        int rc = regcomp(&r->re, in->pattern, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &r->re, msg, sizeof(msg));
            BAD("pattern: %s", msg);
        }
        r->has_re = 1;
        if ((r->pattern = strdup(in->pattern)) == NULL)
            BAD("out of memory");
    }
    return 0;
#undef BAD
}

static void free_rule(st_rule_t *r)
{
    for (size_t i = 0; r->enums != NULL && i != r->nenums; ++i)
        free(r->enums[i]);
    free(r->enums);
    free(r->enum_nums);
    if (r->has_re)
        regfree(&r->re);
    free(r->pattern);
    free(r->name);
}

void st_rules_free(st_rules_t *rules, size_t n)
{
    for (size_t i = 0; rules != NULL && i != n; ++i) {
        for (size_t j = 0; rules[i].attrs != NULL && j != rules[i].n; ++j)
            free_rule(&rules[i].attrs[j]);
        free(rules[i].attrs);
        free(rules[i].table);
    }
    free(rules);
}

int st_rules_compile(const store_table_rules_t *in, size_t n, st_rules_t **out, char *err, size_t errlen)
{
    st_rules_t *rules = n != 0 ? calloc(n, sizeof(*rules)) : NULL;
    *out = NULL;
    if (n != 0 && rules == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i != n; ++i) {
        if ((rules[i].table = strdup(in[i].table)) == NULL ||
            (in[i].nattrs != 0 && (rules[i].attrs = calloc(in[i].nattrs, sizeof(*rules[i].attrs))) == NULL)) {
            snprintf(err, errlen, "out of memory");
            st_rules_free(rules, n);
            return -1;
        }
        for (size_t j = 0; j != in[i].nattrs; ++j) {
            rules[i].n = j + 1; /* freed as far as compiled */
            if (compile_rule(in[i].table, &in[i].attrs[j], &rules[i].attrs[j], err, errlen) != 0) {
                st_rules_free(rules, n);
                return -1;
            }
        }
    }
    *out = rules;
    return 0;
}

int store_rules_check(const store_table_rules_t *rules, size_t nrules, char *err, size_t errlen)
{
    st_rules_t *compiled;
    if (st_rules_compile(rules, nrules, &compiled, err, errlen) != 0)
        return -1;
    st_rules_free(compiled, nrules);
    return 0;
}

/* The length a rule bounds: characters of S, bytes of B, elements of L, M and sets. */
static long length_of(const json_t *av, store_type_t t)
{
    const json_t *v = json_object_iter_value(json_object_iter((json_t *)av));
    switch (t) {
    case STORE_T_S: {
        long n = 0;
        for (const unsigned char *p = (const unsigned char *)json_string_value(v); *p; ++p)
            n += (*p & 0xC0) != 0x80; /* UTF-8: count the bytes that start a character */
        return n;
    }
    case STORE_T_B: {
        const char *b = json_string_value(v);
        return (long)store_b64_decoded_size(b, strlen(b));
    }
    case STORE_T_M:
        return (long)json_object_size(v);
    default:
        return (long)json_array_size(v);
    }
}

/* Checks one attribute against its rule: NULL, or what is wrong (into buf). */
static const char *check_value(const st_rule_t *r, const json_t *av, char *buf, size_t cap)
{
    store_type_t t = store_value_type(av);
    const json_t *v = json_object_iter_value(json_object_iter((json_t *)av));
    store_num_t num;

    if (r->type != STORE_T_NONE && t != r->type) {
        snprintf(buf, cap, "must be of type %s, not %s", store_type_name(r->type), store_type_name(t));
        return buf;
    }
    if (t == STORE_T_N && store_num_parse(json_string_value(v), strlen(json_string_value(v)), &num) == 0) {
        if (r->has_min && store_num_cmp(&num, &r->min) < 0) {
            char m[64];
            store_num_format(&r->min, m);
            snprintf(buf, cap, "must be at least %s", m);
            return buf;
        }
        if (r->has_max && store_num_cmp(&num, &r->max) > 0) {
            char m[64];
            store_num_format(&r->max, m);
            snprintf(buf, cap, "must be at most %s", m);
            return buf;
        }
    }
    if (r->min_length >= 0 || r->max_length >= 0) {
        long len = length_of(av, t);
        if (r->min_length >= 0 && len < r->min_length) {
            snprintf(buf, cap, "must have a length of at least %ld", r->min_length);
            return buf;
        }
        if (r->max_length >= 0 && len > r->max_length) {
            snprintf(buf, cap, "must have a length of at most %ld", r->max_length);
            return buf;
        }
    }
    if (r->nenums != 0) {
        int found = 0;
        for (size_t i = 0; i != r->nenums && !found; ++i)
            found = t == STORE_T_N ? store_num_parse(json_string_value(v), strlen(json_string_value(v)), &num) == 0 &&
                                         store_num_cmp(&num, &r->enum_nums[i]) == 0
                                   : strcmp(json_string_value(v), r->enums[i]) == 0;
        if (!found) {
            size_t o = (size_t)snprintf(buf, cap, "must be one of");
            for (size_t i = 0; i != r->nenums && o < cap; ++i)
                o += (size_t)snprintf(buf + o, cap - o, "%s %s", i ? "," : "", r->enums[i]);
            return buf;
        }
    }
    if (r->has_re && regexec(&r->re, json_string_value(v), 0, NULL, 0) != 0) {
        snprintf(buf, cap, "must match the pattern %s", r->pattern);
        return buf;
    }
    return NULL;
}

int st_rules_check_item(const store_t *s, const char *table, const json_t *item, st_answer_t *a)
{
    char buf[512];
    for (size_t i = 0; i != s->nrules; ++i) {
        const st_rules_t *rs = &s->rules[i];
        if (strcmp(rs->table, table) != 0)
            continue;
        for (size_t j = 0; j != rs->n; ++j) {
            const st_rule_t *r = &rs->attrs[j];
            const json_t *av = json_object_get(item, r->name);
            const char *why = av == NULL ? (r->required ? "is required" : NULL) : check_value(r, av, buf, sizeof(buf));
            if (why != NULL) {
                st_invalid(a, "One or more parameter values were invalid: Schema validation failed for attribute \"%s\": %s",
                           r->name, why);
                return -1;
            }
        }
    }
    return 0;
}
