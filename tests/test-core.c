/* SPDX-License-Identifier: MIT */
/* test-core.c: error slot, strict parsing, tensors and shape checks, atomic
 * writes (including the failure path leaving nothing behind, a writer
 * killed by SIGTERM/SIGINT leaving no temporary, and the temporaries of
 * dead writers removed by the next writer into the directory), the PRNG,
 * the option table, and the float checker's ability to fail. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sfc.h"
#include "test.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_err(void)
{
    T_CHECK(sfc_error("a.npz", "truncated header") == -1);
    T_CHECK(strcmp(sfc_errmsg(), "a.npz: truncated header") == 0);
    errno = ENOENT;
    sfc_error("x.jpg", "cannot open:");
    T_CHECK(strstr(sfc_errmsg(), "x.jpg: cannot open: No such file") != NULL);
    sfc_error(NULL, "plain %d", 3);
    T_CHECK(strcmp(sfc_errmsg(), "plain 3") == 0);
}

static void test_parse(void)
{
    long v;
    double d;
    T_CHECK(sfc_parse_long("--iters", "12", 1, 100, &v) == 0 && v == 12);
    T_CHECK(sfc_parse_long("--iters", "1x", 1, 100, &v) == -1);
    T_CHECK(strstr(sfc_errmsg(), "--iters") != NULL);
    T_CHECK(sfc_parse_long("--iters", "0", 1, 100, &v) == -1);
    T_CHECK(sfc_parse_long("--iters", "", 1, 100, &v) == -1);
    T_CHECK(sfc_parse_double("--lr", "1e-3", 0, 10, &d) == 0 && d == 1e-3);
    T_CHECK(sfc_parse_double("--lr", "nan", 0, 10, &d) == -1);
    T_CHECK(sfc_parse_double("--lr", "0.5.", 0, 10, &d) == -1);
}

static void test_tensor(void)
{
    struct sfc_tensor t;
    T_CHECK(sfc_tensor_f32(&t, 2, 3, 4) == 0);
    T_CHECK(t.ndim == 3 && sfc_tensor_numel(&t) == 24 && t.owns_data);
    T_CHECK(sfc_tensor_nbytes(&t) == 96);
    T_CHECK(((uintptr_t)t.data & 63) == 0);
    T_CHECK(sfc_tensor_f(&t)[23] == 0.0f);
    T_CHECK(sfc_check_shape("t", &t, 2, 3, 4) == 0);
    T_CHECK(sfc_check_shape("t", &t, 2, -1, 4) == 0);
    T_CHECK(sfc_check_shape("t", &t, 2, 3, 5) == -1);
    T_CHECK(strcmp(sfc_errmsg(), "t: expected shape (2, 3, 5), got (2, 3, 4)")
            == 0);
    T_CHECK(sfc_check_shape("t", &t, 2, 12) == -1);
    T_CHECK(sfc_check_dtype("t", &t, SFC_U8) == -1);
    T_CHECK(strcmp(sfc_errmsg(), "t: expected dtype uint8, got float32") == 0);
    struct sfc_tensor v;
    sfc_tensor_view(&v, t.data, SFC_F32, 3, t.shape);
    T_CHECK(sfc_check_same("v", &v, &t) == 0 && !v.owns_data);
    sfc_tensor_release(&v);
    sfc_tensor_release(&t);
    sfc_tensor_release(&t); /* safe twice */
    T_CHECK(t.data == NULL);
    int64_t bad[2] = {3, -1};
    T_CHECK(sfc_tensor_init(&t, SFC_F32, 2, bad) == -1);
    T_CHECK(sfc_tensor_init(&t, SFC_F32, SFC_MAXDIM + 1, bad) == -1);
}

static void test_atomic(void)
{
    char *dir = test_tmpdir("atomic");
    char *path = sfc_path_join(dir, "out.bin");
    T_CHECK(sfc_atomic_write(path, "hello", 5) == 0);
    size_t n;
    char *buf = sfc_read_file(path, &n);
    T_CHECK(buf && n == 5 && memcmp(buf, "hello", 5) == 0);
    free(buf);
    T_CHECK(count_entries(dir) == 1); /* no temporary left */

    /* An aborted write leaves the old file as it was and no temporary. */
    struct sfc_atomic a;
    FILE *fp = sfc_atomic_open(&a, path);
    T_CHECK(fp != NULL);
    fputs("partial", fp);
    T_CHECK(count_entries(dir) == 2);
    sfc_atomic_abort(&a);
    T_CHECK(count_entries(dir) == 1);
    buf = sfc_read_file(path, &n);
    T_CHECK(buf && n == 5);
    free(buf);

    /* A directory that does not exist: clear error, nothing created. */
    char *bad = sfc_path_join(dir, "nodir/out.bin");
    T_CHECK(sfc_atomic_write(bad, "x", 1) == -1);
    T_CHECK(strstr(sfc_errmsg(), "nodir/out.bin") != NULL);
    T_CHECK(count_entries(dir) == 1);

    /* mkdirs */
    char *deep = sfc_path_join(dir, "a/b/c");
    T_CHECK(sfc_mkdirs(deep, 0777) == 0);
    T_CHECK(sfc_mkdirs(deep, 0777) == 0);
    T_CHECK(sfc_mkdirs(path, 0777) == -1); /* a file is in the way */
    T_CHECK(sfc_read_file(bad, &n) == NULL);
    char *cmd = sfc_xasprintf("rm -rf '%s'", dir);
    T_CHECK(system(cmd) == 0);
    free(cmd);
    free(deep);
    free(bad);
    free(path);
    free(dir);
}

/* A child opens an atomic write of dir/out.bin, writes part of it and
 * waits; it is killed with sig while the temporary is open. */
static void atomic_killed(const char *dir, int sig)
{
    char *path = sfc_path_join(dir, "out.bin");
    int up[2], hold[2];
    T_CHECK(pipe(up) == 0 && pipe(hold) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct sfc_atomic a;
        FILE *fp = sfc_atomic_open(&a, path);
        if (!fp) _exit(3);
        fputs("partial", fp);
        fflush(fp);
        char c = 1;
        if (write(up[1], &c, 1) != 1) _exit(4);
        (void)read(hold[0], &c, 1); /* until killed */
        _exit(5);
    }
    char c;
    T_CHECK(read(up[0], &c, 1) == 1);
    T_CHECK_MSG(count_entries(dir) == 1, "signal %d: no temporary seen", sig);
    kill(pid, sig);
    int st = 0;
    T_CHECK(waitpid(pid, &st, 0) == pid);
    T_CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == sig,
                "the writer did not die of signal %d (status %#x)", sig, st);
    T_CHECK_MSG(count_entries(dir) == 0,
                "signal %d: %d entries left (a temporary)", sig,
                count_entries(dir));
    close(up[0]), close(up[1]), close(hold[0]), close(hold[1]);
    free(path);
}

/* A process that has exited: its pid (not reused this soon). */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static void touch(const char *dir, const char *name)
{
    char *p = sfc_path_join(dir, name);
    FILE *f = fopen(p, "w");
    T_CHECK(f && fputs("left", f) >= 0 && fclose(f) == 0);
    free(p);
}

static int exists(const char *dir, const char *name)
{
    char *p = sfc_path_join(dir, name);
    int r = access(p, F_OK) == 0;
    free(p);
    return r;
}

static void test_atomic_killed(void)
{
    char *dir = test_tmpdir("atomic-kill");
    atomic_killed(dir, SIGTERM);
    atomic_killed(dir, SIGINT);

    /* what a SIGKILL leaves: the next writer into the directory removes
     * the temporaries of dead writers, and only those */
    char dead[64], live[64], held[64];
    snprintf(dead, sizeof dead, ".a.npz.tmp.%ld.Ab12Cd", (long)dead_pid());
    snprintf(live, sizeof live, ".b.npz.tmp.%ld.Ab12Cd", (long)getpid());
    snprintf(held, sizeof held, ".c.npz.tmp.%ld.Ab12Cd", (long)dead_pid());
    const char *keep[] = {live, held, ".d.npz.tmp.Ab12Cd", "e.npz.tmp.1.Ab12Cd",
                          ".f.npz.tmp.x1.Ab12Cd", ".g.tmp.1.Ab12C"};
    touch(dir, dead);
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) touch(dir, keep[i]);
    /* held: a dead pid in the name, but its lock is held (a writer on
     * another host of a shared file system) */
    int up[2], hold[2];
    T_CHECK(pipe(up) == 0 && pipe(hold) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        char *p = sfc_path_join(dir, held);
        int fd = open(p, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0) _exit(3);
        char c = 1;
        if (write(up[1], &c, 1) != 1) _exit(4);
        (void)read(hold[0], &c, 1);
        _exit(0);
    }
    char c;
    T_CHECK(read(up[0], &c, 1) == 1);
    char *out = sfc_path_join(dir, "new.bin");
    T_CHECK(sfc_atomic_write(out, "x", 1) == 0);
    T_CHECK_MSG(!exists(dir, dead), "dead writer's %s not removed", dead);
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
        T_CHECK_MSG(exists(dir, keep[i]), "%s removed", keep[i]);
    T_CHECK(write(hold[1], &c, 1) == 1);
    waitpid(pid, NULL, 0);
    close(up[0]), close(up[1]), close(hold[0]), close(hold[1]);
    /* the sweep is once per directory and process */
    touch(dir, dead);
    T_CHECK(sfc_atomic_write(out, "y", 1) == 0);
    T_CHECK(exists(dir, dead));
    char *cmd = sfc_xasprintf("rm -rf '%s'", dir);
    T_CHECK(system(cmd) == 0);
    free(cmd);
    free(out);
    free(dir);
}

static void test_rng(void)
{
    struct sfc_rng a, b;
    sfc_rng_seed(&a, 10);
    sfc_rng_seed(&b, 10);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= sfc_rng_u64(&a) == sfc_rng_u64(&b);
    T_CHECK(same);
    /* below(): every value reached, roughly uniform (chi-square, 10 bins) */
    int hist[10] = {0};
    for (int i = 0; i < 100000; i++) hist[sfc_rng_below(&a, 10)]++;
    double chi = 0;
    for (int i = 0; i < 10; i++)
        chi += (hist[i] - 10000.0) * (hist[i] - 10000.0) / 10000.0;
    T_CHECK_MSG(chi < 30, "chi-square %g", chi); /* p < 1e-3 at 9 dof */
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = sfc_rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    T_CHECK(fabs(s / 1e5) < 0.02 && fabs(s2 / 1e5 - 1) < 0.02);
    int p[50];
    for (int i = 0; i < 50; i++) p[i] = i;
    sfc_rng_shuffle_int(&a, p, 50);
    int seen[50] = {0}, ok = 1;
    for (int i = 0; i < 50; i++) seen[p[i]]++;
    for (int i = 0; i < 50; i++) ok &= seen[i] == 1;
    T_CHECK(ok);
}

static void test_cli(void)
{
    int iters = 12, quiet = 0;
    double w = 0.7;
    const char *out = "ir_label", *rule = "sfc";
    struct sfc_shard shard = {0, 1};
    static const char *const rules[] = {"sfc", "irn", NULL};
    const struct sfc_opt opts[] = {
        SFC_OPT_INT_("iters", &iters, "N", 1, 1000, "iterations"),
        SFC_OPT_DOUBLE_("weight", &w, "W", 0, 10, "weight"),
        SFC_OPT_STRING_("out", &out, "DIR", "output \"dir\""),
        SFC_OPT_CHOICE_("rule", &rule, rules, "rule"),
        SFC_OPT_SHARD_(&shard),
        SFC_OPT_FLAG_("quiet", 'q', &quiet, "no progress"),
        SFC_OPT_END_,
    };
    const char *usage[] = {"sfc-x [options] ID...", NULL};
    struct sfc_cli cli = {usage, NULL, opts};
    char *argv[] = {"sfc-x", "a", "--iters", "5", "--weight=1.5", "-q",
                    "--shard", "1/4", "b", "--rule", "irn", "--", "--c",
                    NULL};
    int n = sfc_cli_parse(&cli, 13, argv);
    T_CHECK(n == 3 && !strcmp(argv[0], "a") && !strcmp(argv[1], "b") &&
            !strcmp(argv[2], "--c"));
    T_CHECK(iters == 5 && w == 1.5 && quiet == 1 && shard.i == 1 &&
            shard.n == 4 && !strcmp(rule, "irn"));
    T_CHECK(sfc_shard_mine(&shard, 5) && !sfc_shard_mine(&shard, 6));
    char *json = sfc_cli_config_json(&cli);
    T_CHECK_MSG(!strcmp(json, "{\"iters\":5,\"weight\":1.5,\"out\":"
                              "\"ir_label\",\"rule\":\"irn\",\"shard\":"
                              "\"1/4\",\"quiet\":true}"),
                "%s", json);
    free(json);
    /* usage text carries every default */
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    sfc_cli_usage(&cli, fp);
    fclose(fp);
    T_CHECK(strstr(buf, "[default 5]") && strstr(buf, "[default 1/4]") &&
            strstr(buf, "(sfc, irn)"));
    free(buf);
}

static void test_checker_fails(void)
{
    /* The checker must be able to fail: perturb one element. */
    float a[100], b[100];
    for (int i = 0; i < 100; i++) a[i] = b[i] = (float)i * 0.37f;
    T_CHECK(test_close_q("same", a, b, 100, 1e-6, 1e-6, 1));
    b[57] += 1e-3f;
    T_CHECK(!test_close_q("perturbed", a, b, 100, 1e-6, 1e-6, 1));
    b[57] = NAN;
    T_CHECK(!test_close_q("nan", a, b, 100, 1e-6, 1e-6, 1));
    T_CHECK(test_max_rel(a, b, 100, 1e-6) == INFINITY);
}

int main(int argc, char **argv)
{
    (void)argc;
    sfc_proginit(argv[0]);
    test_err();
    test_parse();
    test_tensor();
    test_atomic();
    test_atomic_killed();
    test_rng();
    test_cli();
    test_checker_fails();
    return test_summary();
}
