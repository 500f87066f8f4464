/*
 * Output naming. See naming.h.
 */
#include "naming.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"

static const char *keys[] = {"dir", "stem", "ext", "w", "h", "variant", "date", "hash"};

enum { KEY_DATE = 6, KEY_HASH = 7 };

/* The field name..name+len ("date:%Y" counts as date). */
static int key_index(const char *name, size_t len)
{
    if (len > 5 && memcmp(name, "date:", 5) == 0)
        return KEY_DATE;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i]) == len && memcmp(keys[i], name, len) == 0)
            return (int)i;
    return -1;
}

int ib_name_check(const char *tmpl, char *err, size_t errlen)
{
    int stem_or_dir = 0;
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (*p == '}') {
            snprintf(err, errlen, "bad --name '%s': '}' without '{'", tmpl);
            return -1;
        }
        if (*p != '{')
            continue;
        const char *end = strchr(p, '}');
        if (end == NULL) {
            snprintf(err, errlen, "bad --name '%s': '{' without '}'", tmpl);
            return -1;
        }
        int k = key_index(p + 1, (size_t)(end - p - 1));
        if (k < 0) {
            snprintf(err, errlen,
                     "bad --name '%s': unknown field '%.*s' (use {dir} {stem} {ext} {w} {h} "
                     "{variant} {date} {date:FORMAT} {hash})",
                     tmpl, (int)(end - p + 1), p);
            return -1;
        }
        stem_or_dir |= k == 1;
        p = end;
    }
    if (!stem_or_dir) {
        snprintf(err, errlen, "bad --name '%s': it needs {stem}, or every input gets one name",
                 tmpl);
        return -1;
    }
    if (tmpl[0] == '/' || strstr(tmpl, "..") != NULL) {
        snprintf(err, errlen, "bad --name '%s': it must stay under the output directory", tmpl);
        return -1;
    }
    return 0;
}

int ib_name_has_hash(const char *tmpl)
{
    return tmpl != NULL && strstr(tmpl, "{hash}") != NULL;
}

void ib_name_split(const char *rel, char *dir, size_t dlen, char *stem, size_t slen, char *ext,
                   size_t elen)
{
    const char *slash = strrchr(rel, '/');
    const char *base = slash != NULL ? slash + 1 : rel;
    size_t dn = slash != NULL ? (size_t)(slash - rel) : 0;
    if (dn >= dlen)
        dn = dlen - 1;
    memcpy(dir, rel, dn);
    dir[dn] = '\0';
    const char *dot = strrchr(base, '.');
    if (dot == NULL || dot == base) {
        snprintf(stem, slen, "%s", base);
        snprintf(ext, elen, "%s", "");
        return;
    }
    snprintf(stem, slen, "%.*s", (int)(dot - base), base);
    snprintf(ext, elen, "%s", dot + 1);
}

/* Appends s, dropping a '/' that would start the path or double another. */
static int append(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '/' && (*o == 0 || out[*o - 1] == '/'))
            continue;
        if (*o + 1 >= cap)
            return -1;
        out[(*o)++] = c;
    }
    out[*o] = '\0';
    return 0;
}

/* {date} or {date:FORMAT} (the field from p to end) of a wall-clock date.
 * A date that would climb out of the output root is refused. */
static int date_field(const char *p, const char *end, int64_t date, char *out, size_t cap)
{
    char fmt[256];
    int n = (int)(end - p - 1);
    snprintf(fmt, sizeof fmt, "%.*s", n > 5 ? n - 5 : 0, p + 6);
    if (ib_date_format(date, fmt, out, cap) < 0 || strstr(out, "..") != NULL)
        return -1;
    return 0;
}

int ib_name_render(const char *root, const char *tmpl, const ib_name_vars_t *v, char *out,
                   size_t cap)
{
    char dir[4096], stem[1024], inext[256], num[32], datebuf[256];
    ib_name_split(v->rel, dir, sizeof dir, stem, sizeof stem, inext, sizeof inext);

    size_t rootlen = strlen(root);
    while (rootlen > 1 && root[rootlen - 1] == '/')
        rootlen--;
    if (rootlen + 2 >= cap)
        return -1;
    memcpy(out, root, rootlen);
    size_t o = rootlen;
    if (out[o - 1] != '/')
        out[o++] = '/';
    out[o] = '\0';
    char *tail = out + o;
    size_t tcap = cap - o, t = 0;

    for (const char *p = tmpl; *p != '\0'; p++) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        int k = end != NULL ? key_index(p + 1, (size_t)(end - p - 1)) : -1;
        if (k < 0) {
            if (append(tail, tcap, &t, p, 1) < 0)
                return -1;
            continue;
        }
        const char *val = "";
        switch (k) {
        case 0:
            val = dir;
            break;
        case 1:
            val = stem;
            break;
        case 2:
            val = v->ext;
            break;
        case 3:
            snprintf(num, sizeof num, "%u", v->width);
            val = num;
            break;
        case 4:
            snprintf(num, sizeof num, "%u", v->height);
            val = num;
            break;
        case 5:
            val = v->variant != NULL ? v->variant : "";
            break;
        case KEY_DATE:
            if (date_field(p, end, v->date, datebuf, sizeof datebuf) < 0)
                return -1;
            val = datebuf;
            break;
        case KEY_HASH:
            val = v->hash != NULL ? v->hash : "{hash}";
            break;
        }
        if (append(tail, tcap, &t, val, strlen(val)) < 0)
            return -1;
        p = end;
    }
    /* A trailing '/' is not a file name. */
    if (t == 0 || tail[t - 1] == '/')
        return -1;
    return 0;
}
