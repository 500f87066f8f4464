/*
 * @FILE expansion. See argfile.h.
 *
 * NOTES
 * - The words are split by GLib's g_shell_parse_argv(): the shell's
 *   quoting without a parser of our own. Comments are blanked out first
 *   (ib_argfile_blank_comments), since GLib's own handling depends on the
 *   character before the '#'.
 * - Runs in the parent before the command line is parsed: it reads files,
 *   so it is not part of the pure ib_cli_parse(). GLib here starts no
 *   threads and touches no libvips.
 */
#include "argfile.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

void ib_argfile_blank_comments(char *text)
{
    char quote = 0;
    for (char *p = text; *p != '\0'; p++) {
        if (quote != 0) {
            /* In double quotes a backslash still escapes the next byte. */
            if (quote == '"' && *p == '\\' && p[1] != '\0')
                p++;
            else if (*p == quote)
                quote = 0;
            continue;
        }
        if (*p == '\\' && p[1] != '\0') {
            p++;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '#' && (p == text || g_ascii_isspace(p[-1]))) {
            while (*p != '\0' && *p != '\n')
                *p++ = ' ';
            if (*p == '\0')
                break;
        }
    }
}

/* Appends the words of argument list v to out, expanding the @FILEs among
 * them; depth counts the files open around it. */
static int expand_into(GPtrArray *out, char **v, int n, int depth, char *err, size_t errlen);

static int expand_file(GPtrArray *out, const char *name, int depth, char *err, size_t errlen)
{
    char *text = NULL;
    GError *e = NULL;
    if (depth >= IB_ARGFILE_MAX_DEPTH) {
        snprintf(err, errlen, "@%s: argument files nested more than %d deep (one names itself?)",
                 name, IB_ARGFILE_MAX_DEPTH);
        return -1;
    }
    if (!g_file_get_contents(name, &text, NULL, &e)) {
        snprintf(err, errlen, "cannot read argument file '@%s': %s", name, e->message);
        g_error_free(e);
        return -1;
    }
    ib_argfile_blank_comments(text);
    char **words = NULL;
    int n = 0, rc = 0;
    /* Nothing but blanks and comments is no arguments, not an error. */
    if (strspn(text, " \t\r\n\f\v") < strlen(text) && !g_shell_parse_argv(text, &n, &words, &e)) {
        /* GLib quotes the whole text after its reason: the reason will do. */
        const char *cut = strstr(e->message, " (The text");
        int len = cut != NULL ? (int)(cut - e->message) : (int)strcspn(e->message, "\n");
        snprintf(err, errlen, "argument file '@%s': %.*s", name, len, e->message);
        g_error_free(e);
        rc = -1;
    }
    g_free(text);
    if (rc == 0 && words != NULL)
        rc = expand_into(out, words, n, depth + 1, err, errlen);
    g_strfreev(words);
    return rc;
}

static int expand_into(GPtrArray *out, char **v, int n, int depth, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (v[i][0] == '@' && v[i][1] != '\0') {
            if (expand_file(out, v[i] + 1, depth, err, errlen) < 0)
                return -1;
        } else {
            g_ptr_array_add(out, g_strdup(v[i]));
        }
    }
    return 0;
}

int ib_argfile_expand(int argc, char **argv, int *out_argc, char ***out, char *err, size_t errlen)
{
    GPtrArray *a = g_ptr_array_new();
    if (argc > 0)
        g_ptr_array_add(a, g_strdup(argv[0]));
    if (argc > 1 && expand_into(a, argv + 1, argc - 1, 0, err, errlen) < 0) {
        g_ptr_array_add(a, NULL);
        g_strfreev((char **)g_ptr_array_free(a, FALSE));
        return -1;
    }
    *out_argc = (int)a->len;
    g_ptr_array_add(a, NULL);
    *out = (char **)g_ptr_array_free(a, FALSE);
    return 0;
}

void ib_argfile_free(char **argv)
{
    g_strfreev(argv);
}
