/*
 * What the completion scripts offer, shared by the three writers. See
 * complete.h.
 */
#include "complete.h"

#include <string.h>

/* The gravities that place a box; crop also takes the smart ones. */
#define PLACE "center north south east west northeast northwest southeast southwest"

const char ib_chain_ops[] = "resize= crop= rotate= autorotate flip flop grayscale greyscale blur= "
                            "sharpen sharpen= brightness= contrast= gamma= modulate= sepia negate "
                            "normalize normalise threshold= pad= flatten flatten= trim trim= "
                            "border= overlay= text=";

const ib_chain_field_t ib_chain_fields[] = {
    {"crop", 1, PLACE " attention entropy"},
    {"pad", 2, PLACE},
    {"overlay", 0, "@file"},
    {"overlay", 1, PLACE},
    {"text", 1, PLACE},
    {NULL, 0, NULL},
};

ib_offer_t ib_offer_kind(const ib_option_t *o)
{
    static const struct {
        const char *name;
        ib_offer_t kind;
    } kinds[] = {{"@dir", IB_OFFER_DIR}, {"@file", IB_OFFER_FILE}, {"@chain", IB_OFFER_CHAIN}};
    if (o->offers == NULL)
        return IB_OFFER_NOTHING;
    if (o->offers[0] != '@')
        return IB_OFFER_WORDS;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(o->offers, kinds[i].name) == 0)
            return kinds[i].kind;
    return IB_OFFER_UNKNOWN;
}

/* Whether the help's first n characters end a clause: "(", "; " or ": "
 * follows them, outside parentheses, and not "--palette: " (a condition
 * the rest of the sentence needs). */
static int clause_ends(const char *t, size_t n)
{
    int depth = 0;
    for (size_t i = 0; i < n; i++)
        depth += t[i] == '(' ? 1 : t[i] == ')' ? -1 : 0;
    if (depth != 0)
        return 0;
    if (strncmp(t + n, " (", 2) == 0 || strncmp(t + n, "; ", 2) == 0)
        return 1;
    if (strncmp(t + n, ": ", 2) != 0)
        return 0;
    size_t w = n;
    while (w > 0 && t[w - 1] != ' ')
        w--;
    return strncmp(t + w, "--", 2) != 0;
}

void ib_offer_summary(const ib_option_t *o, char *buf, size_t cap)
{
    enum { MIN = 12, MAX = 70 }; /* a menu line beside the option's name */
    char text[1024];
    snprintf(text, sizeof text, "%s", o->help);
    for (char *nl = strchr(text, '\n'); nl != NULL; nl = strchr(nl, '\n'))
        *nl = ' ';
    size_t n = strlen(text);
    for (size_t i = MIN; i < n; i++)
        if (clause_ends(text, i)) {
            n = i;
            break;
        }
    if (n > MAX) {
        text[MAX] = '\0';
        char *cut = strstr(text, ", ") != NULL ? strrchr(text, ',') : strrchr(text, ' ');
        n = cut != NULL ? (size_t)(cut - text) : MAX;
    }
    while (n > 0 && strchr(",;: ", text[n - 1]) != NULL)
        n--;
    snprintf(buf, cap, "%.*s", (int)n, text);
}

void ib_offer_put_escaped(FILE *f, const char *s, const char *quote_as, const char *special)
{
    for (; *s != '\0'; s++) {
        if (*s == '\'')
            fputs(quote_as, f);
        else if (strchr(special, *s) != NULL)
            fprintf(f, "\\%c", *s);
        else
            fputc(*s, f);
    }
}

void ib_offer_put(FILE *f, ib_offer_t kind, const char *words, const ib_offer_forms_t *forms)
{
    switch (kind) {
    case IB_OFFER_DIR:
        fputs(forms->dir, f);
        break;
    case IB_OFFER_FILE:
        fputs(forms->file, f);
        break;
    case IB_OFFER_CHAIN:
        fputs(forms->chain, f);
        break;
    case IB_OFFER_WORDS:
        fprintf(f, "%s%s%s", forms->words_open, words, forms->words_close);
        break;
    default:
        fputs(forms->nothing, f);
        break;
    }
}

void ib_offer_put_chain(FILE *f, const ib_chain_script_t *s)
{
    fputs(s->head, f);
    fputs(ib_chain_ops, f);
    fputs(s->value, f);
    for (const ib_chain_field_t *c = ib_chain_fields; c->op != NULL; c++) {
        fprintf(f, "%s%s:%d%s", s->arm_open, c->op, c->field, s->arm_body);
        int file = strcmp(c->offers, "@file") == 0;
        ib_offer_put(f, file ? IB_OFFER_FILE : IB_OFFER_WORDS, c->offers, &s->forms);
        fputs(s->arm_close, f);
    }
    fputs(s->end, f);
}
