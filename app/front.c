/*
 * The front end's look at the machine, once, before a run: the paths on
 * the command line, the CPUs this task may use, Slurm's and the job
 * engine's variables, and the IMGBATCH_* switches. Everything below the
 * front end takes these from the plan; nothing there calls getenv.
 */
#include "plan.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "htmlreport.h"
#include "naming.h"
#include "sniff.h"

/* The CPUs this task was given: a Slurm task's allocation, else the
 * affinity mask (which containers and taskset narrow), else all online. */
static unsigned default_jobs(void)
{
    const char *slurm = getenv("SLURM_CPUS_PER_TASK");
    if (slurm != NULL) {
        char *end;
        unsigned long n = strtoul(slurm, &end, 10);
        if (*slurm != '\0' && *end == '\0' && n >= 1 && n <= 256)
            return (unsigned)n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Whether an IMGBATCH_* switch is on: set to anything but "0". */
static int env_on(const char *name, int unset)
{
    const char *v = getenv(name);
    return v == NULL ? unset : strcmp(v, "0") != 0;
}

static int check_inputs(const ib_plan_t *p, char *err, size_t errlen)
{
    struct stat st;
    for (int i = 0; i < p->n_inputs; i++)
        if (strcmp(p->inputs[i], "-") != 0 && stat(p->inputs[i], &st) < 0)
            return snprintf(err, errlen, "cannot read input '%s': %s", p->inputs[i],
                            strerror(errno)),
                   -1;
    if (p->files_from != NULL && strcmp(p->files_from, "-") != 0 && access(p->files_from, R_OK) < 0)
        return snprintf(err, errlen, "cannot read --files-from '%s': %s", p->files_from,
                        strerror(errno)),
               -1;
    return 0;
}

/* The directory an input's mirrored path is relative to: the input itself
 * for a directory, else --base or the file's own directory. */
static int input_root(const ib_plan_t *p, const char *in, struct stat *st)
{
    if (stat(in, st) < 0 || S_ISDIR(st->st_mode))
        return 0;
    char dir[PATH_MAX];
    const char *slash = strrchr(in, '/');
    if (p->base != NULL)
        snprintf(dir, sizeof dir, "%s", p->base);
    else
        snprintf(dir, sizeof dir, "%.*s", slash != NULL ? (int)(slash - in + 1) : 1,
                 slash != NULL ? in : ".");
    return stat(dir, st);
}

/* Whether --name gives each input its own name back (the default does). */
static int names_unchanged(const ib_plan_t *p)
{
    ib_name_vars_t v = {.rel = "d/s.e", .ext = "e", .width = 1, .height = 1};
    if (p->n_variants > 0)
        v.variant = p->variants[0].name;
    char out[64];
    return ib_name_render("r", p->name_template, &v, out, sizeof out) == 0 &&
           strcmp(out, "r/d/s.e") == 0;
}

/* An output root that is where the inputs are, with names that do not
 * change, would have every output replace its input: that is --in-place,
 * and not something to do by accident. */
static int check_output_not_input(const ib_plan_t *p, char *err, size_t errlen)
{
    struct stat out, in;
    if (p->in_place || p->output == NULL || stat(p->output, &out) < 0 || !names_unchanged(p))
        return 0;
    for (int i = 0; i < p->n_inputs; i++) {
        if (strcmp(p->inputs[i], "-") == 0 || input_root(p, p->inputs[i], &in) < 0 ||
            in.st_dev != out.st_dev || in.st_ino != out.st_ino)
            continue;
        snprintf(err, errlen,
                 "-o %s is where the input '%s' is: every output would replace its input; use "
                 "--in-place for that, or a --name that makes new names, like "
                 "'{dir}/{stem}-small.{ext}'",
                 p->output, p->inputs[i]);
        return -1;
    }
    return 0;
}

static int check_directories(const ib_plan_t *p, char *err, size_t errlen)
{
    struct stat st;
    /* A file is watched through its folder, which is what to name. */
    for (int i = 0; p->watch && i < p->n_inputs; i++)
        if (stat(p->inputs[i], &st) == 0 && !S_ISDIR(st.st_mode))
            return snprintf(err, errlen,
                            "--watch watches directories: '%s' is not one (watch its folder)",
                            p->inputs[i]),
                   -1;
    if (p->output != NULL && stat(p->output, &st) == 0 && !S_ISDIR(st.st_mode))
        return snprintf(err, errlen, "output '%s' exists and is not a directory", p->output), -1;
    if (p->base != NULL && (stat(p->base, &st) < 0 || !S_ISDIR(st.st_mode)))
        return snprintf(err, errlen, "--base '%s' is not a directory", p->base), -1;
    return 0;
}

/* Each overlay of the chain is a file we can read, of an image format:
 * looked at here, once, from its first bytes. The parent never decodes
 * it (that is the workers' work, once each), but a missing watermark must
 * stop the run before any image is written without it. */
static int check_overlays(ib_plan_t *p, char *err, size_t errlen)
{
    for (unsigned i = 0; i < p->chain.n; i++) {
        const ib_op_t *op = &p->chain.op[i];
        unsigned char head[IB_SNIFF_BYTES];
        if (op->kind != IB_OP_OVERLAY)
            continue;
        int fd = open(op->str, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? ib_read_upto(fd, head, sizeof head) : -1;
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (n < 0)
            return snprintf(err, errlen, "overlay: cannot read '%s': %s", op->str, strerror(e)), -1;
        if (ib_sniff_magic(head, (size_t)n) == NULL && !ib_sniff_image_name(op->str))
            return snprintf(err, errlen, "overlay: '%s' is not an image", op->str), -1;
        /* A new watermark under the same name makes the outputs stale. */
        struct stat st;
        size_t used = strlen(p->recipe);
        if (stat(op->str, &st) == 0)
            snprintf(p->recipe + used, sizeof p->recipe - used, ";overlay%u=%lld:%lld.%09ld", i,
                     (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    }
    return 0;
}

int ib_front_prepare(ib_plan_t *p, char *err, size_t errlen)
{
    p->fast_paths = env_on("IMGBATCH_FAST", 1);
    p->debug = env_on("IMGBATCH_DEBUG", 0);
    p->pin_workers = env_on("IMGBATCH_PIN", 1);
    if (p->jobs == 0)
        p->jobs = default_jobs();
    if (check_inputs(p, err, errlen) < 0 || check_output_not_input(p, err, errlen) < 0 ||
        check_directories(p, err, errlen) < 0 || check_overlays(p, err, errlen) < 0)
        return -1;
    if (p->shard_text != NULL && !p->has_shard) {
        if (ib_shard_auto(p->shard_text, getenv, &p->shard, err, errlen) < 0)
            return -1;
        p->has_shard = 1;
    }
    /* A dry run without -o, or --in-place: names are made under ".". */
    if (p->output == NULL)
        p->output = ".";
    /* Outputs the page cannot link to are shown by inline copies, which
     * only a worker can make: it must know before the fork. */
    p->report_inline = p->report != NULL && !ib_htmlreport_links_outputs(p);
    return 0;
}
