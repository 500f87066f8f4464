/*
 * The bash completion script. See complete.h.
 *
 * bash splits the word being completed at the characters of
 * COMP_WORDBREAKS (= : < > among them), so "-f crop=9x9:no" reaches the
 * function as -f crop = 9x9 : no, and readline replaces only the piece
 * after the last break. The script joins the pieces back into the word,
 * completes the whole word, then strips from each reply what readline
 * keeps.
 */
#include "complete.h"

static const char head[] =
    "# bash completion for imgbatch(1), made from the option table in\n"
    "# app/options.c at build time.                             -*- shell-script -*-\n"
    "#\n"
    "# Installed as share/bash-completion/completions/imgbatch, where\n"
    "# bash-completion loads it on first use; it needs none of its helpers.\n"
    "\n"
    "# Whether $1 is a piece bash split off at its word breaks.\n"
    "_imgbatch_is_break()\n"
    "{\n"
    "    local breaks='=:<>'\n"
    "    [[ -n $1 && $1 != *[!$breaks]* ]]\n"
    "}\n"
    "\n"
    "# -f CHAIN: ops, comma-separated, and the words some of their values\n"
    "# take (fields after '=', split at ':').\n"
    "_imgbatch_chain()\n"
    "{\n"
    "    local head= item=$cur\n"
    "    if [[ $cur == *,* ]]; then\n"
    "        head=${cur%,*},\n"
    "        item=${cur##*,}\n"
    "    fi\n"
    "    compopt -o nospace 2>/dev/null\n"
    "    if [[ $item != *=* ]]; then\n"
    "        mapfile -t COMPREPLY < <(compgen -P \"$head\" -W '";

static const char chain_value[] = "' -- \"$item\")\n"
                                  "        return\n"
                                  "    fi\n"
                                  "    local op=${item%%=*} value=${item#*=}\n"
                                  "    local colons=${value//[!:]/} last=${value##*:}\n"
                                  "    local fixed=$head$op=${value%\"$last\"}\n"
                                  "    case $op:${#colons} in\n";

/* _imgbatch_chain; a field's words or files come after the parts before
 * it. */
static const ib_chain_script_t chain = {
    .head = head,
    .value = chain_value,
    .arm_open = "    ",
    .arm_body = ")\n        mapfile -t COMPREPLY < <(compgen -P \"$fixed\" ",
    .forms = {.file = "-f", .words_open = "-W '", .words_close = "'"},
    .arm_close = " -- \"$last\") ;;\n",
    .end = "    esac\n"
           "}\n"
           "\n",
};

static const char offer_head[] =
    "# What the value of option $prev, or an option or INPUT, can be.\n"
    "_imgbatch_offer()\n"
    "{\n"
    "    case $prev in\n";

/* "-o | --output" for a case pattern. */
static void bash_pattern(FILE *f, const ib_option_t *o)
{
    if (o->letter != 0)
        fprintf(f, "-%c | ", o->letter);
    fprintf(f, "--%s", o->name);
}

#define FILENAMES "        compopt -o filenames 2>/dev/null\n"

/* What a case arm of _imgbatch_offer does for each kind of value. */
static const ib_offer_forms_t value_forms = {
    .nothing = "", /* a value of the user's own */
    .dir = FILENAMES "        mapfile -t COMPREPLY < <(compgen -d -- \"$cur\")\n",
    .file = FILENAMES "        mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
                      "        [[ -z $cur ]] && COMPREPLY+=(-)\n",
    .chain = "        _imgbatch_chain\n",
    .words_open = "        mapfile -t COMPREPLY < <(compgen -W '",
    .words_close = "' -- \"$cur\")\n"
                   "        [[ ${COMPREPLY[0]-} == */ ]] && compopt -o nospace 2>/dev/null\n",
};

/* The case arm that completes option o's value. */
static void bash_value(FILE *f, const ib_option_t *o)
{
    fputs("    ", f);
    bash_pattern(f, o);
    fputs(")\n", f);
    ib_offer_put(f, ib_offer_kind(o), o->offers, &value_forms);
    fputs("        return ;;\n", f);
}

static const char tail[] =
    "\n"
    "    if [[ $cur == -* ]]; then\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"$opts\" -- \"$cur\")\n"
    "        return\n"
    "    fi\n"
    "\n"
    "    # INPUT: image files and directories to walk.\n"
    "    compopt -o filenames 2>/dev/null\n"
    "    mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
    "}\n"
    "\n"
    "# bash splits the word under the cursor at = : < > (COMP_WORDBREAKS):\n"
    "# join the pieces back into cur, complete that, and hand readline only\n"
    "# what follows the last break ($keep is what it keeps).\n"
    "_imgbatch()\n"
    "{\n"
    "    local i=$COMP_CWORD cur=${COMP_WORDS[COMP_CWORD]} piece=${COMP_WORDS[COMP_CWORD]}\n"
    "    _imgbatch_is_break \"$piece\" && piece=\n"
    "    while ((i > 1)) && { _imgbatch_is_break \"${COMP_WORDS[i]}\" ||\n"
    "        _imgbatch_is_break \"${COMP_WORDS[i - 1]}\"; }; do\n"
    "        ((i--))\n"
    "        cur=${COMP_WORDS[i]}$cur\n"
    "    done\n"
    "    local prev=\n"
    "    ((i > 0)) && prev=${COMP_WORDS[i - 1]}\n"
    "    # --opt=value in one word\n"
    "    if [[ $cur == --*=* ]]; then\n"
    "        prev=${cur%%=*}\n"
    "        cur=${cur#*=}\n"
    "    fi\n"
    "    local keep=${cur%\"$piece\"}\n"
    "\n"
    "    COMPREPLY=()\n"
    "    _imgbatch_offer\n"
    "    [[ -n $keep ]] && COMPREPLY=(\"${COMPREPLY[@]#\"$keep\"}\")\n"
    "    return 0\n"
    "}\n"
    "\n"
    "complete -F _imgbatch imgbatch\n";

void ib_complete_bash(FILE *f)
{
    ib_offer_put_chain(f, &chain);
    fputs(offer_head, f);
    for (size_t i = 0; i < ib_n_options; i++)
        if (ib_options[i].value != NULL)
            bash_value(f, &ib_options[i]);
    fputs("    esac\n\n    local opts='", f);
    for (size_t i = 0; i < ib_n_options; i++) {
        if (ib_options[i].letter != 0)
            fprintf(f, "-%c ", ib_options[i].letter);
        fprintf(f, "--%s%s", ib_options[i].name, i + 1 < ib_n_options ? " " : "");
    }
    fputs("'\n", f);
    fputs(tail, f);
}
