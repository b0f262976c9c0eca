/*
 * picohttpparser, as built into libh2o 2.2.5 (Debian 12's libh2o-evloop exports phr_* but installs no header).
 * These declarations mirror that version's API; tests/unit/test_phr.c checks them against the library.
 */
#ifndef EDGEPROXY_PROXY_PHR_H
#define EDGEPROXY_PROXY_PHR_H

#include <stddef.h>
#include <sys/types.h>

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Returns the number of bytes of the head, -2 when incomplete, -1 on a parse error. */
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);

struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};

/*
 * Decodes chunked data in place: on return *bufsz is the number of decoded bytes at buf. Returns -2 when more is
 * needed (all input consumed), -1 on error, or the number of bytes left after the end of the chunked data.
 */
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

#endif
