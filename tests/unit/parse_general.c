/*
 * parse_general.c: a second build of src/codec/parse.c, linked into
 * test_codec, that test_text_run holds the library's parser against.
 *
 * The parser reads runs of typed-text structs with text_run, a fast path
 * that must give exactly what the general reader (read_struct and
 * note_struct) gives. To see what the general reader makes of the same
 * bytes, this file compiles parse.c as it is, under other names
 * (general_update_parse & co, so nothing clashes with the library), with
 * loom__varuint7_at and loom__varuint8_at answering "longer than 7 bytes"
 * while parse_general_fast is false. text_run reads every varUint of a
 * struct through them and leaves a struct with a longer one to
 * read_struct, so it then takes nothing; the readers that read_struct calls are inline
 * functions of headers included before the macro and keep the real one,
 * and the decoder of checked structs (loom__rstruct_get) has its own
 * fallback. The map entries' fast path (fast_run) reads no varUint through
 * them and stays on. Nothing in the library is there for the test. A new
 * non-static function in parse.c needs a name here too (the link fails
 * on a duplicate symbol otherwise).
 *
 * parse_general_reads counts the info bytes read_struct reads (its only
 * loom__read_u8): the test checks that the general build read every
 * struct itself, so that a change of text_run that slips past the stub
 * fails the test instead of comparing the fast path with itself; with
 * parse_general_fast set, the same count says how many structs the fast
 * path left to read_struct.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "any/any_internal.h"
#include "codec/codec_int.h"
#include "parse_general.h"

bool parse_general_fast;
size_t parse_general_reads;

#define loom__varuint7_at(p, out) \
    (parse_general_fast ? loom__varuint7_at(p, out) : (const uint8_t *)NULL)
#define loom__varuint8_at(p, out) \
    (parse_general_fast ? loom__varuint8_at(p, out) : (const uint8_t *)NULL)
#define loom__read_u8(r, out)   (parse_general_reads++, loom__read_u8(r, out))
#define loom__update_parse      general_update_parse
#define loom__rupdate_free      general_rupdate_free
#define loom__rstruct_get       general_rstruct_get
#define loom__doc_opts_read     general_doc_opts_read
#define loom__doc_opts_free     general_doc_opts_free
#define loom__update_parse_load general_update_parse_load
#define loom__rupdate_expand    general_rupdate_expand
#define loom__varuint8_long     general_varuint8_long

#include "codec/parse.c"
