/*
 * EXIF dates and GPS. See exif.h. Every offset is checked against the
 * block's length before it is read: the bytes come from any file.
 */
#include "exif.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define TAG_DATETIME 0x0132
#define TAG_EXIF_IFD 0x8769
#define TAG_GPS_IFD 0x8825
#define TAG_DATETIME_ORIGINAL 0x9003

typedef struct {
    unsigned char *p; /* the TIFF header's first byte */
    size_t n;
    int big; /* Motorola order */
} tiff_t;

static unsigned get16(const tiff_t *t, size_t at)
{
    const unsigned char *q = t->p + at;
    return t->big ? (unsigned)q[0] << 8 | q[1] : (unsigned)q[1] << 8 | q[0];
}

static uint32_t get32(const tiff_t *t, size_t at)
{
    const unsigned char *q = t->p + at;
    return t->big ? (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3]
                  : (uint32_t)q[3] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[1] << 8 | q[0];
}

static int open_tiff(const unsigned char *p, size_t n, tiff_t *t)
{
    if (n >= 6 && memcmp(p, "Exif\0\0", 6) == 0)
        p += 6, n -= 6;
    if (n < 8 || !(memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0))
        return -1;
    *t = (tiff_t){(unsigned char *)p, n, p[0] == 'M'};
    return 0;
}

/* The IFD at offset ifd: its entry count, or -1 if it does not fit. */
static int ifd_count(const tiff_t *t, uint32_t ifd)
{
    if (ifd < 8 || ifd > t->n - 2)
        return -1;
    unsigned count = get16(t, ifd);
    return (size_t)count * 12 + 6 <= t->n - ifd ? (int)count : -1;
}

/* The offset of entry tag in the IFD at ifd, or 0. */
static size_t find_entry(const tiff_t *t, uint32_t ifd, unsigned tag)
{
    int count = ifd_count(t, ifd);
    for (int i = 0; i < count; i++)
        if (get16(t, ifd + 2 + (size_t)i * 12) == tag)
            return ifd + 2 + (size_t)i * 12;
    return 0;
}

/* "YYYY:MM:DD HH:MM:SS" of an ASCII entry, as wall-clock seconds. */
static int entry_date(const tiff_t *t, size_t e, int64_t *wall)
{
    uint32_t count = get32(t, e + 4), at = get32(t, e + 8);
    if (get16(t, e + 2) != 2 || count < 19 || at > t->n || count > t->n - at)
        return -1;
    char s[20];
    memcpy(s, t->p + at, 19);
    s[19] = '\0';
    struct tm tm = {0};
    if (sscanf(s, "%4d:%2d:%2d %2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6 ||
        tm.tm_year < 1800 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1)
        return -1; /* "0000:00:00 00:00:00" and blanks: no date */
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *wall = (int64_t)timegm(&tm);
    return 0;
}

int ib_exif_date(const unsigned char *p, size_t n, int64_t *wall)
{
    tiff_t t;
    if (open_tiff(p, n, &t) < 0)
        return -1;
    uint32_t ifd0 = get32(&t, 4);
    size_t exif = find_entry(&t, ifd0, TAG_EXIF_IFD);
    size_t e = exif != 0 ? find_entry(&t, get32(&t, exif + 8), TAG_DATETIME_ORIGINAL) : 0;
    if (e != 0 && entry_date(&t, e, wall) == 0)
        return 0;
    e = find_entry(&t, ifd0, TAG_DATETIME);
    return e != 0 ? entry_date(&t, e, wall) : -1;
}

/* Bytes of one value of each TIFF type (1-12); 0 for unknown types. */
static size_t type_size(unsigned type)
{
    static const unsigned char sizes[13] = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8};
    return type < 13 ? sizes[type] : 0;
}

int ib_exif_strip_gps(unsigned char *p, size_t n)
{
    tiff_t t;
    if (open_tiff(p, n, &t) < 0)
        return -1;
    uint32_t ifd0 = get32(&t, 4);
    int count0 = ifd_count(&t, ifd0);
    if (count0 < 0)
        return -1;
    size_t e = find_entry(&t, ifd0, TAG_GPS_IFD);
    if (e == 0)
        return 0;
    uint32_t gps = get32(&t, e + 8);
    int count = ifd_count(&t, gps);
    for (int i = 0; i < count; i++) {
        size_t g = gps + 2 + (size_t)i * 12;
        uint64_t bytes = (uint64_t)type_size(get16(&t, g + 2)) * get32(&t, g + 4);
        uint32_t at = get32(&t, g + 8);
        /* Values over 4 bytes live elsewhere in the block: zeroed too. */
        if (bytes > 4 && at <= t.n && bytes <= t.n - at)
            memset(t.p + at, 0, (size_t)bytes);
    }
    if (count >= 0)
        memset(t.p + gps, 0, (size_t)count * 12 + 6);
    /* The pointer goes: the entries after it, and the next-IFD offset,
     * move up one place; the freed place at the end is zeroed. */
    size_t end = ifd0 + 2 + (size_t)count0 * 12 + 4;
    memmove(t.p + e, t.p + e + 12, end - e - 12);
    memset(t.p + end - 12, 0, 12);
    unsigned left = (unsigned)count0 - 1;
    t.p[ifd0] = (unsigned char)(t.big ? left >> 8 : left);
    t.p[ifd0 + 1] = (unsigned char)(t.big ? left : left >> 8);
    return 1;
}
