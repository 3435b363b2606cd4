/*
 * parse_general.h: src/codec/parse.c built once more for test_codec
 * (parse_general.c), with its text fast path (text_run) off, or on with
 * parse_general_fast; parse_general_reads counts the structs its
 * read_struct reads. general_update_parse is that build's
 * loom__update_parse.
 */
#ifndef LOOM_TEST_PARSE_GENERAL_H
#define LOOM_TEST_PARSE_GENERAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"

extern bool parse_general_fast;
extern size_t parse_general_reads;

int general_update_parse(const loom_allocator *a,
                         const uint8_t *p,
                         size_t len,
                         size_t input,
                         loom__rupdate *out,
                         loom_error *err);

#endif
