/*
 * store/value.h (internal to store/): DynamoDB attribute values and items, on jansson.
 *
 * An AttributeValue is DynamoDB's typed JSON: an object with exactly one member whose name is the type:
 *   {"S": "text"} {"N": "12.5"} {"B": "<base64>"} {"BOOL": true} {"NULL": true} {"L": [AV, ...]} {"M": {"name": AV}}
 *   {"SS": ["a", "b"]} {"NS": ["1", "2"]} {"BS": ["<base64>", ...]}
 * An item is a JSON object mapping attribute names to AttributeValues. In memory the store works on jansson values
 * (json_t); in LMDB it keeps an item as its compact JSON text, once checked and normalized (store_item_check), so a
 * read can hand the text on without rebuilding it.
 *
 * Ownership: no function here takes or drops a reference it does not say so; every json_t stays the caller's.
 * Error messages are written into the caller's buffer (err, errlen), NUL-terminated, in DynamoDB's wording (the
 * message of a ValidationException, without the "1 validation error detected: " envelope, which the caller adds when
 * DynamoDB does).
 */
#ifndef EDGEPROXY_STORE_VALUE_H
#define EDGEPROXY_STORE_VALUE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define STORE_ITEM_MAX (400 * 1024) /* bytes, as DynamoDB counts an item (store_item_size) */
#define STORE_DEPTH_MAX 32          /* nesting of L and M */

typedef enum store_type {
    STORE_T_NONE = 0, /* not an AttributeValue */
    STORE_T_S,
    STORE_T_N,
    STORE_T_B,
    STORE_T_BOOL,
    STORE_T_NULL,
    STORE_T_L,
    STORE_T_M,
    STORE_T_SS,
    STORE_T_NS,
    STORE_T_BS,
} store_type_t;

/* The type of a checked AttributeValue (STORE_T_NONE when av is not one). */
store_type_t store_value_type(const json_t *av);
/* "S", "N", ..., "BS" (DynamoDB's names, also used by attribute_type()); NULL for STORE_T_NONE. */
const char *store_type_name(store_type_t t);
/* The type named `name` ("S", ..., "BS"), or STORE_T_NONE. */
store_type_t store_type_of_name(const char *name, size_t len);

/* Result of the checks: 0 fine, or one of these (err holds the message). */
#define STORE_VALUE_EINVALID -1 /* a ValidationException */
/* a SerializationException: the JSON has the wrong shape (a number where a string must be, an array where an object
 * must be...) */
#define STORE_VALUE_ESERIALIZE -2

/*
 * Checks one AttributeValue and normalizes it in place: N and NS members become DynamoDB's normalized text
 * (store/decimal.h), set members are checked for duplicates (numerically for NS, bytewise after base64 decoding for
 * BS), B and BS members must be base64. Sets may not be empty; L and M nest at most STORE_DEPTH_MAX deep. Empty
 * strings and binaries are allowed here (DynamoDB allows them outside keys: see store_key_check).
 *
 * Two passes, as DynamoDB runs them: first the shape of the whole value (what DynamoDB's JSON deserializer rejects
 * with a SerializationException, STORE_VALUE_ESERIALIZE: {"S": 5} is "NUMBER_VALUE cannot be converted to String",
 * {"L": {}} is "Start of structure or map found where not expected", "x" in place of an AttributeValue is "Unexpected
 * value type in payload", a B that is not base64 is "Base64 encoded length is expected a multiple of 4 bytes but
 * found: 5"...), then the values (a ValidationException, STORE_VALUE_EINVALID: "Supplied AttributeValue is empty,
 * must contain exactly one of the supported datatypes", "One or more parameter values were invalid: An string set
 * may not be empty" (sic, two spaces), number errors with store_num_strerror's words...). av is the value of an
 * attribute (nesting level 1): its L and M members' values are level 2, and so on.
 *
 * Normalization besides numbers: members whose value is JSON null and members of no known type are dropped (DynamoDB's
 * deserializer ignores them: {"S": "a", "x": 1} is {"S": "a"}, {"S": null} is empty); a BOOL or NULL given as one of
 * the strings DynamoDB converts ("true", "1", "yes", "false", "0", "no", any case) becomes a JSON boolean. Duplicates
 * are an error, never silently removed. On an error av may be partly normalized (it is rejected anyway).
 */
int store_value_check(json_t *av, char *err, size_t errlen);
/* The first pass of store_value_check alone (0 or STORE_VALUE_ESERIALIZE), changing nothing: for callers that must
 * report a SerializationException anywhere in a request before any ValidationException. */
int store_value_check_shape(const json_t *av, char *err, size_t errlen);
/* Checks an item: an object, each name 1..65535 bytes of UTF-8, each value as above, and its size at most
 * STORE_ITEM_MAX ("Item size has exceeded the maximum allowed size"). Normalizes in place.
 * All shapes first (an item that is not an object: "Unexpected field type", or for an array "Unrecognized collection
 * type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"), then, attribute by
 * attribute in order, the name ("Empty attribute name", "Attribute name is too large, must be less than 65536 bytes":
 * DynamoDB Local's words) and the value, and last the size. Names inside M values are not checked (any string). */
int store_item_check(json_t *item, char *err, size_t errlen);
/* The first pass of store_item_check alone, changing nothing. */
int store_item_check_shape(const json_t *item, char *err, size_t errlen);

/* A key attribute's value: of type S, N or B as the schema says (`want`), and not empty ("One or more parameter values
 * are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk", and "... an
 * empty binary value. Key: pk" for B). av must be checked (store_value_check). A value of another type is "One or
 * more parameter values were invalid: Type mismatch for key pk expected: S actual: N" (PutItem's words; GetItem and
 * DeleteItem answer "The provided key element does not match the schema", which is the caller's to say). Returns 0 or
 * STORE_VALUE_EINVALID. */
int store_key_check(const json_t *av, store_type_t want, const char *name, char *err, size_t errlen);
/* The size limits of key values: a partition key at most 2048 bytes ("One or more parameter values were invalid: Size
 * of hashkey has exceeded the maximum size limit of2048 bytes", sic), a sort key (range != 0) at most 1024 ("One or
 * more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes").
 * S counts its UTF-8 bytes, B its decoded bytes; an N always fits (38 digits). Returns 0 or STORE_VALUE_EINVALID. */
#define STORE_HASH_KEY_MAX 2048
#define STORE_RANGE_KEY_MAX 1024
int store_key_check_size(const json_t *av, int range, char *err, size_t errlen);

/*
 * Sizes as DynamoDB counts them (docs: "Item sizes and formats"): a name is its UTF-8 length; S its UTF-8 length; N
 * about 1 byte per two significant digits plus 1; B its decoded length; BOOL and NULL 1; L and M 3 bytes plus 1 per
 * element plus the elements (and their names for M); sets the sum of their members.
 *
 * N exactly (the length of DynamoDB's own number encoding, as DynamoDB Local computes it, and as dynalite's tests
 * against DynamoDB confirm): 1 for zero; otherwise 1 (exponent byte) + the number of base-100 digits, the digits
 * being grouped in pairs aligned on even powers of ten (one base-100 digit for "1", "10", "100", "0.1", "0.01"; two
 * for "101", "12.3", "1.5") + 1 more for a negative number unless it has 20 base-100 digits (only 38 digits can). So
 * "1" takes 2 bytes, "-1" 3, 38 digits 20 or 21 (21 when negative).
 */
size_t store_value_size(const json_t *av);
size_t store_item_size(const json_t *item);

/* DynamoDB equality of two checked AttributeValues: same type; N numerically; sets regardless of order; L in order;
 * M by names. */
int store_value_equal(const json_t *a, const json_t *b);
/* Ordering of two checked values of one type S (bytewise, UTF-8), N (numerically) or B (bytewise, decoded): returns 0
 * and *cmp (-1, 0, 1), or -1 when they are not both of one of those types. */
int store_value_compare(const json_t *a, const json_t *b, int *cmp);

/*
 * An order-preserving byte encoding of a key value (S, N or B), for LMDB keys: memcmp of two encodings of one type
 * orders them as store_value_compare does. The encoding of a (partition, sort) key pair is the partition key's
 * encoding, escaped so that it sorts before any longer key that shares it, followed by the sort key's. Returns the
 * length, or 0 when av is not a key type; a length above cap means buf was too small (nothing useful was written).
 *
 * Layout: S is its UTF-8 bytes, B its decoded bytes, N store_num_key's bytes (an empty S or B, which store_key_check
 * rejects, encodes to 0 bytes). In a pair the partition key's bytes are escaped, each 0x00 written 0x00 0xFF, and
 * terminated by 0x00 0x01; then the sort key's bytes as they are (they end the key). Keys compare as LMDB's default
 * comparison does (memcmp over the shorter length, then the shorter first): pairs order by partition key, then by
 * sort key, and two distinct pairs never encode alike. With sk NULL the pair encoding is the partition key's escaped
 * bytes and the terminator alone: the key of a table without a sort key, and the prefix that every item of that
 * partition shares in a table with one (a Query's range).
 */
size_t store_key_encode(const json_t *av, uint8_t *buf, size_t cap);
size_t store_key_encode_pair(const json_t *pk, const json_t *sk /* or NULL */, uint8_t *buf, size_t cap);
/* The reverse: a new AttributeValue of type t (S, N or B) from an encoding (NULL when buf is not one), and the two
 * halves of a pair encoding (sk_type STORE_T_NONE for a table without a sort key; *sk is then NULL). The pair decoder
 * returns 0, or -1 (and sets both to NULL) when buf is not such an encoding. */
json_t *store_key_decode(store_type_t t, const uint8_t *buf, size_t len);
int store_key_decode_pair(const uint8_t *buf, size_t len, store_type_t pk_type, store_type_t sk_type, json_t **pk, json_t **sk);

/* Base64 as DynamoDB takes it (the standard alphabet, padded; checked by store_value_check), for B and BS members.
 * decoded_size is exact for checked text; decode writes that many bytes to out and returns the count; encode returns
 * a new JSON string. */
size_t store_b64_decoded_size(const char *s, size_t len);
size_t store_b64_decode(const char *s, size_t len, uint8_t *out);
json_t *store_b64_string(const uint8_t *p, size_t n);

#endif
