/*
 * @FILE arguments, as gcc and javac read them: an argument "@FILE" stands
 * for the arguments written in FILE, anywhere on the command line and in
 * other argument files. The front end expands them before ib_cli_parse(),
 * which stays pure.
 */
#ifndef IB_APP_ARGFILE_H
#define IB_APP_ARGFILE_H

#include <stddef.h>

/* How deep argument files may name each other (a loop stops here). */
#define IB_ARGFILE_MAX_DEPTH 16

/*
 * The arguments of argv with every "@FILE" replaced by the words of FILE:
 * split at whitespace, with the shell's quotes and backslashes, and '#'
 * starting a comment where it starts a word. A NULL-terminated vector of
 * copies into *out (argv[0] kept), its length into *out_argc; free it with
 * ib_argfile_free(). 0, or -1 with a one-line reason naming the file in err
 * (a missing or unreadable file, bad quoting, a loop).
 */
int ib_argfile_expand(int argc, char **argv, int *out_argc, char ***out, char *err, size_t errlen);
void ib_argfile_free(char **argv);

/* The text of an argument file with its comments blanked out: a '#' at
 * the start of a word, outside quotes, up to the end of its line. In
 * place. GLib's g_shell_parse_argv() knows comments only after a space or
 * a newline, not after a tab: this makes them the same everywhere. */
void ib_argfile_blank_comments(char *text);

#endif
