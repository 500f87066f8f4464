/*
 * The zsh completion function, _imgbatch: one _arguments spec per name
 * of each option. See complete.h.
 *
 * Every option is marked repeatable ('*'): the table does not say which
 * ones are, and offering an option twice costs less than hiding one the
 * user means to repeat (-f, -F, --variant, --include).
 */
#include "complete.h"

#include <string.h>

static const char top[] = "#compdef imgbatch\n"
                          "# zsh completion for imgbatch(1), made from the option table in\n"
                          "# app/options.c at build time. Installed as\n"
                          "# share/zsh/vendor-completions/_imgbatch, where compinit finds it.\n"
                          "\n"
                          "# -f CHAIN: ops, comma-separated, and the words some of their values\n"
                          "# take (fields after '=', split at ':').\n"
                          "(( $+functions[_imgbatch_chain] )) ||\n"
                          "_imgbatch_chain() {\n"
                          "  compset -P '*,'\n"
                          "  if [[ $PREFIX != *=* ]]; then\n"
                          "    compadd -S '' -- ";

static const char chain_value[] = "\n"
                                  "    return\n"
                                  "  fi\n"
                                  "  local op=${PREFIX%%=*} value=${PREFIX#*=}\n"
                                  "  local colons=${value//[^:]/}\n"
                                  "  case $op:${#colons} in\n";

/* _imgbatch_chain, with a field's words or files. */
static const ib_chain_script_t chain = {
    .head = top,
    .value = chain_value,
    .arm_open = "  (",
    .arm_body = ") compset -P '*[=:]'; ",
    .forms = {.file = "_files", .words_open = "compadd -S '' -- ", .words_close = ""},
    .arm_close = " ;;\n",
    .end = "  esac\n"
           "}\n"
           "\n",
};

/* The action of an option's spec, after its value's name. */
static const ib_offer_forms_t value_forms = {
    .nothing = ": ", /* a value of the user's own: zsh shows its name */
    .dir = ":_files -/",
    .file = ":_files",
    .chain = ":_imgbatch_chain",
    .words_open = ":(",
    .words_close = ")",
};

/* zsh's own quote in a single-quoted word: close, escaped, reopen. */
#define ZSH_QUOTE "'\\''"

/* ":DIR:_files -/": what follows an option that takes a value. */
static void spec_value(FILE *f, const ib_option_t *o)
{
    fputc(':', f);
    ib_offer_put_escaped(f, o->value, ZSH_QUOTE, ":");
    ib_offer_put(f, ib_offer_kind(o), o->offers, &value_forms);
}

/* '*'{-o+,--output=}'[output root]:DIR:_files -/': -o takes its value
 * in the next word or the same one, --output after '=' or in the next. */
static void spec(FILE *f, const ib_option_t *o)
{
    const char *arg = o->value != NULL ? "+" : "", *eq = o->value != NULL ? "=" : "";
    char summary[128];
    ib_offer_summary(o, summary, sizeof summary);
    if (o->letter != 0)
        fprintf(f, "  '*'{-%c%s,--%s%s}'[", o->letter, arg, o->name, eq);
    else
        fprintf(f, "  '*--%s%s[", o->name, eq);
    ib_offer_put_escaped(f, summary, ZSH_QUOTE, "[]\\:");
    fputc(']', f);
    if (o->value != NULL)
        spec_value(f, o);
    fputs("' \\\n", f);
}

void ib_complete_zsh(FILE *f)
{
    ib_offer_put_chain(f, &chain);
    fputs("_arguments -s -S \\\n", f);
    for (size_t i = 0; i < ib_n_options; i++)
        spec(f, &ib_options[i]);
    fputs("  '*:INPUT:_files'\n", f);
}
