/*
 * The fish completion script: one `complete` line per option. See
 * complete.h.
 */
#include "complete.h"

static const char top[] =
    "# fish completion for imgbatch(1), made from the option table in\n"
    "# app/options.c at build time. Installed as\n"
    "# share/fish/vendor_completions.d/imgbatch.fish, where fish loads it on\n"
    "# first use.\n"
    "\n"
    "# The value being typed: the word under the cursor without the\n"
    "# \"--name=\" or \"-x\" it may start with.\n"
    "function __imgbatch_value\n"
    "    commandline -ct | string replace -r -- '^(--[^=]*=|-[^-])' ''\n"
    "end\n"
    "\n"
    "# -f CHAIN: ops, comma-separated, and the words some of their values\n"
    "# take (fields after '=', split at ':').\n"
    "function __imgbatch_chain\n"
    "    set -l tok (__imgbatch_value)\n"
    "    set -l head (string match -r -- '^.*,' $tok)\n"
    "    set -l item (string replace -r -- '^.*,' '' $tok)\n"
    "    if not string match -q -- '*=*' $item\n"
    "        for w in ";

static const char chain_value[] =
    "\n"
    "            echo \"$head$w\"\n"
    "        end\n"
    "        return\n"
    "    end\n"
    "    set -l op (string replace -r -- '=.*' '' $item)\n"
    "    set -l colons (string replace -a -r -- '[^:]' '' (string replace -r -- '^[^=]*=' '' "
    "$item))\n"
    "    set -l fixed (string replace -r -- '[^:=]*$' '' $tok)\n"
    "    set -l last (string replace -r -- '^.*[:=]' '' $tok)\n"
    "    switch $op:(string length -- \"$colons\")\n";

/* __imgbatch_chain; a field's words or files are the list a loop walks. */
static const ib_chain_script_t chain = {
    .head = top,
    .value = chain_value,
    .arm_open = "        case ",
    .arm_body = "\n            for w in ",
    .forms = {.file = "(__fish_complete_path $last)", .words_open = "", .words_close = ""},
    .arm_close = "\n"
                 "                echo \"$fixed$w\"\n"
                 "            end\n",
    .end = "    end\n"
           "end\n"
           "\n",
};

/* The flags that say what an option's value completes to. */
static const ib_offer_forms_t value_forms = {
    .nothing = " -x", /* a value of the user's own, not a file */
    .dir = " -x -a '(__fish_complete_directories (__imgbatch_value))'",
    .file = " -r -F",
    .chain = " -x -a '(__imgbatch_chain)'",
    .words_open = " -x -a '",
    .words_close = "'",
};

/* fish's own quote in a single-quoted string. */
#define FISH_QUOTE "\\'"

static void complete_line(FILE *f, const ib_option_t *o)
{
    char summary[128];
    ib_offer_summary(o, summary, sizeof summary);
    fputs("complete -c imgbatch", f);
    if (o->letter != 0)
        fprintf(f, " -s %c", o->letter);
    fprintf(f, " -l %s", o->name);
    if (o->value != NULL)
        ib_offer_put(f, ib_offer_kind(o), o->offers, &value_forms);
    fputs(" -d '", f);
    ib_offer_put_escaped(f, summary, FISH_QUOTE, "\\");
    fputs("'\n", f);
}

void ib_complete_fish(FILE *f)
{
    ib_offer_put_chain(f, &chain);
    for (size_t i = 0; i < ib_n_options; i++)
        complete_line(f, &ib_options[i]);
}
