/*
 * Shell completion scripts for imgbatch, made at build time from the
 * option table (app/options.h) by ib-completion (gen.c): one writer per
 * shell, all reading the table and the -f chain's words below, so that
 * bash, zsh and fish offer the same options and the same values.
 *
 * NOTES
 * - The op and gravity names live in filters/ops.c, which has no list of
 *   them to share; tests/test_docs.c checks the words here against its
 *   parser both ways.
 */
#ifndef IB_COMPLETIONS_COMPLETE_H
#define IB_COMPLETIONS_COMPLETE_H

#include <stdio.h>

#include "options.h"

/* What an option's value completes to, from its .offers. */
typedef enum {
    IB_OFFER_NOTHING, /* a value of the user's own (GEOM, N) */
    IB_OFFER_DIR,     /* "@dir" */
    IB_OFFER_FILE,    /* "@file" */
    IB_OFFER_CHAIN,   /* "@chain": -f's ops, and gravities inside them */
    IB_OFFER_WORDS,   /* the space-separated words of .offers */
    IB_OFFER_UNKNOWN, /* an "@..." no writer knows: a mistake in the table */
} ib_offer_t;

ib_offer_t ib_offer_kind(const ib_option_t *o);

/* The ops of a -f chain, space-separated, with '=' after those that need
 * a value. */
extern const char ib_chain_ops[];

/* A field of an op's value (0 the first, after '='; fields are split at
 * ':') that offers words, or files when offers is "@file". */
typedef struct {
    const char *op;
    int field;
    const char *offers;
} ib_chain_field_t;

/* Ends with an entry whose op is NULL. */
extern const ib_chain_field_t ib_chain_fields[];

/* How one shell writes what a value completes to, by kind: words go
 * between words_open and words_close. */
typedef struct {
    const char *nothing, *dir, *file, *chain;
    const char *words_open, *words_close;
} ib_offer_forms_t;

/* Writes what a value of that kind (with those words) completes to. */
void ib_offer_put(FILE *f, ib_offer_t kind, const char *words, const ib_offer_forms_t *forms);

/* How one shell writes the function that completes -f's CHAIN: head,
 * ib_chain_ops, value up to the case on "op:field", then a case arm per
 * entry of ib_chain_fields (arm_open, "op:field", arm_body, the field's
 * offer in forms, arm_close), then end. */
typedef struct {
    const char *head, *value;
    const char *arm_open, *arm_body, *arm_close;
    ib_offer_forms_t forms;
    const char *end;
} ib_chain_script_t;

void ib_offer_put_chain(FILE *f, const ib_chain_script_t *s);

/* The first line of o's help, without the punctuation that continued it
 * ("same (default), jpg, ..., heif," loses its last comma): the one-line
 * description zsh and fish show beside the option. */
void ib_offer_summary(const ib_option_t *o, char *buf, size_t cap);

/* Writes s into a single-quoted string the caller has opened: each
 * single quote as quote_as, and a backslash before each character of
 * special. */
void ib_offer_put_escaped(FILE *f, const char *s, const char *quote_as, const char *special);

void ib_complete_bash(FILE *f);
void ib_complete_zsh(FILE *f);
void ib_complete_fish(FILE *f);

#endif
