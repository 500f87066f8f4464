/*
 * The option table: every command-line option defined once, with its
 * names, its value, its group and help text, what shell completion offers
 * for it, and the function that applies it to the plan. getopt_long's
 * table, --help, the bash, zsh and fish completion (completions/, at
 * build time) and the man page's option list (checked by
 * tests/test_docs.c) all come from it. A new option goes here first.
 */
#ifndef IB_APP_OPTIONS_H
#define IB_APP_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "plan.h"

/* What the command line asked for besides a run. */
typedef enum { IB_CLI_RUN, IB_CLI_HELP, IB_CLI_VERSION } ib_cli_action_t;

/* The parser's state while it walks argv; the setters fill it. */
typedef struct {
    ib_plan_t *plan;
    ib_cli_action_t action;
    const char *size_text; /* -s as given, for the recipe */
    char filters[1024];    /* every -f, for the recipe */
    ib_chain_t extra;      /* the -f ops, appended after -s */
    int max_args;          /* room in plan->includes and ->excludes */
    char *err;
    size_t errlen;
} ib_cli_t;

/* A plan field an option stores into without a setter of its own: a
 * switch stores value; a number is checked against min..max; a text
 * field keeps the argument as given; a choice stores the index of the
 * argument among the option's offered words (an enum in their order). */
typedef enum {
    IB_FIELD_SWITCH,
    IB_FIELD_INT,
    IB_FIELD_UINT,
    IB_FIELD_U64,
    IB_FIELD_TEXT,
    IB_FIELD_CHOICE
} ib_field_kind_t;

typedef struct {
    size_t offset; /* in ib_plan_t */
    ib_field_kind_t kind;
    unsigned long long min, max;
    int value;
} ib_field_t;

typedef struct {
    const char *name;   /* long name, without the dashes */
    char letter;        /* short name, or 0 */
    const char *value;  /* the value's name in help ("DIR"), NULL for a switch */
    const char *group;  /* the --help heading it is listed under */
    const char *help;   /* --help text; '\n' starts a continuation line */
    const char *offers; /* completion: NULL nothing, "@dir", "@file", "@chain"
                         * (-f's ops), or words; see completions/ */
    /* Applies the option (arg is NULL for a switch): 0, or -1 with a
     * message in cli->err. NULL for an option that stores into one plan
     * field, which .field describes. */
    int (*set)(ib_cli_t *cli, const char *arg);
    ib_field_t field;
} ib_option_t;

/* Applies option o, with its value arg (NULL for a switch). */
int ib_option_apply(ib_cli_t *cli, const ib_option_t *o, const char *arg);

extern const ib_option_t ib_options[];
extern const size_t ib_n_options;

/* The --help text, from the table. */
void ib_options_help(FILE *f);

#endif
