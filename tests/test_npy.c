/* NumPy .npy reader and writer: round trips, files laid out exactly as
 * numpy.save writes them, and clear errors for what mecbed does not read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mecbed/npy.h"
#include "mecbed/platform.h"

static char dir[256];

static const char *tmp(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* A file as numpy.save writes it: v1.0, header padded with spaces to a
 * multiple of 64 bytes including the 10-byte preamble, ending in '\n'. */
static void write_raw(const char *path, int major, const char *dict, const void *data, size_t data_bytes)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t len = strlen(dict) + 1;
    size_t pad = (64 - (pre + len) % 64) % 64;
    size_t hlen = len + pad;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f);
    fputc(0, f);
    fputc((int)(hlen & 0xff), f);
    fputc((int)((hlen >> 8) & 0xff), f);
    if (major != 1) {
        fputc(0, f);
        fputc(0, f);
    }
    fputs(dict, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    if (data_bytes)
        fwrite(data, 1, data_bytes, f);
    fclose(f);
}

static void test_round_trip_shapes(void **state)
{
    (void)state;
    int64_t shapes[][4] = {{2, 3, 0, 0}, {5, 0, 0, 0}, {1, 3, 7, 9}, {0, 0, 0, 0}};
    int ndims[] = {2, 1, 4, 0};
    char err[256];
    for (int s = 0; s < 4; s++) {
        mb_tensor *t = mb_tensor_new(ndims[s], shapes[s]);
        mb_tensor_fill_uniform(t, 11 + (uint64_t)s, -3, 3);
        assert_int_equal(mb_npy_write(t, tmp("rt.npy"), err, sizeof err), 0);
        mb_tensor *u = mb_npy_read(tmp("rt.npy"), err, sizeof err);
        assert_non_null(u);
        assert_int_equal(u->ndim, t->ndim);
        assert_true(mb_tensor_same_shape(t, u));
        assert_memory_equal(t->data, u->data, mb_tensor_bytes(t));
        /* the header is 64-byte aligned, as numpy requires for version 1.0 */
        FILE *f = fopen(tmp("rt.npy"), "rb");
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        assert_int_equal((size - (long)mb_tensor_bytes(t)) % 64, 0);
        mb_tensor_free(t);
        mb_tensor_free(u);
    }
}

static void test_reads_numpy_layout(void **state)
{
    (void)state;
    float v[6] = {1, 2, 3, 4, 5, 6.5f};
    char err[256];
    write_raw(tmp("np.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, sizeof v);
    mb_tensor *t = mb_npy_read(tmp("np.npy"), err, sizeof err);
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->dims[0], 2);
    assert_int_equal(t->dims[1], 3);
    assert_true(t->data[5] == 6.5f);
    mb_tensor_free(t);

    /* version 2.0 (4-byte header length), 1-D tuple "(6,)" */
    write_raw(tmp("np2.npy"), 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", v, sizeof v);
    t = mb_npy_read(tmp("np2.npy"), err, sizeof err);
    assert_non_null(t);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->dims[0], 6);
    mb_tensor_free(t);

    /* big-endian float32 is byte-swapped */
    uint8_t be[4] = {0x3f, 0xc0, 0x00, 0x00}; /* 1.5f */
    write_raw(tmp("be.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", be, 4);
    t = mb_npy_read(tmp("be.npy"), err, sizeof err);
    assert_non_null(t);
    assert_true(t->data[0] == 1.5f);
    mb_tensor_free(t);
}

static void expect_error(const char *file, const char *needle)
{
    char err[256] = "";
    mb_tensor *t = mb_npy_read(file, err, sizeof err);
    if (t || !strstr(err, needle))
        fail_msg("%s: expected an error containing \"%s\", got \"%s\"", file, needle, t ? "(no error)" : err);
    assert_non_null(strstr(err, file)); /* the message names the file */
}

static void test_errors(void **state)
{
    (void)state;
    double d[2] = {1, 2};
    float v[6] = {0};
    write_raw(tmp("f8.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", d, sizeof d);
    expect_error(tmp("f8.npy"), "dtype '<f8' is not supported");
    write_raw(tmp("i4.npy"), 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", d, 8);
    expect_error(tmp("i4.npy"), "astype(np.float32)");
    write_raw(tmp("fo.npy"), 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", v, sizeof v);
    expect_error(tmp("fo.npy"), "Fortran");
    write_raw(tmp("tr.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, 10);
    expect_error(tmp("tr.npy"), "truncated");
    write_raw(tmp("tail.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", v, 8);
    expect_error(tmp("tail.npy"), "unexpected bytes");
    write_raw(tmp("nodescr.npy"), 1, "{'fortran_order': False, 'shape': (1,), }", v, 4);
    expect_error(tmp("nodescr.npy"), "lacks 'descr'");
    write_raw(tmp("badshape.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", v, 4);
    expect_error(tmp("badshape.npy"), "bad 'shape'");
    write_raw(tmp("9d.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", v, 4);
    expect_error(tmp("9d.npy"), "more than 8 dimensions");
    FILE *f = fopen(tmp("text.npy"), "w");
    fputs("hello, not numpy\n", f);
    fclose(f);
    expect_error(tmp("text.npy"), "not a NumPy .npy file");
    f = fopen(tmp("short.npy"), "wb");
    fwrite("\x93NUMPY\x01\x00\x40", 1, 9, f);
    fclose(f);
    expect_error(tmp("short.npy"), "truncated");
    expect_error(tmp("missing.npy"), "No such file");
}

/* Random byte edits and truncations of a valid file: either a tensor or an
 * error naming the file, never a crash (run under SANITIZE for memory bugs). */
/* Non-finite values are refused, and only regular files are read: a FIFO
 * once blocked forever and /dev/zero grew without bound. alarm() turns a
 * regression into a failure rather than a hang. */
static void test_finite_and_regular_only(void **state)
{
    (void)state;
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    float nan3[3] = {1, NAN, 2}, inf3[3] = {1, 2, -INFINITY};
    write_raw(tmp("nan.npy"), 1, dict, nan3, sizeof nan3);
    expect_error(tmp("nan.npy"), "element 1 of 3 is NaN");
    write_raw(tmp("inf.npy"), 1, dict, inf3, sizeof inf3);
    expect_error(tmp("inf.npy"), "element 2 of 3 is -Inf");
    /* a huge shape in a small file is refused before allocating (fuzz_npy
     * found a 50-byte file asking for 4 GB) */
    write_raw(tmp("huge.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", nan3, 8);
    expect_error(tmp("huge.npy"), "the header's shape needs 4000000000 bytes of data, the file has 8");
    alarm(10);
    unlink(tmp("fifo.npy"));
    assert_int_equal(mkfifo(tmp("fifo.npy"), 0600), 0);
    expect_error(tmp("fifo.npy"), "is a FIFO, not a regular file");
    char err[256];
    assert_null(mb_npy_read("/dev/zero", err, sizeof err));
    assert_non_null(strstr(err, "/dev/zero: is a character device"));
    assert_null(mb_npy_read(dir, err, sizeof err));
    assert_non_null(strstr(err, "is a directory"));
    alarm(0);
}

static void test_mutations(void **state)
{
    (void)state;
    char err[256];
    mb_tensor *t = mb_tensor_new4(1, 2, 3, 4);
    mb_tensor_fill_uniform(t, 3, -1, 1);
    const char *path = tmp("m.npy");
    char good[512];
    snprintf(good, sizeof good, "%s", tmp("good.npy"));
    assert_int_equal(mb_npy_write(t, good, err, sizeof err), 0);
    FILE *f = fopen(good, "rb");
    unsigned char orig[1024];
    size_t len = fread(orig, 1, sizeof orig, f);
    fclose(f);
    uint64_t rng = 99;
    unsigned char buf[1024];
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(buf, orig, len);
        size_t n = len;
        if (iter % 5 == 0)
            n = (size_t)(mb_rng_next(&rng) % len);
        else
            for (int e = 0; e < 3; e++) /* mostly in the header, where parsing happens */
                buf[mb_rng_next(&rng) % (iter % 2 ? 128 : len)] = (unsigned char)mb_rng_next(&rng);
        f = fopen(path, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        err[0] = 0;
        mb_tensor *u = mb_npy_read(path, err, sizeof err);
        if (u)
            mb_tensor_free(u);
        else if (strncmp(err, path, strlen(path)))
            fail_msg("iteration %d: error does not name the file: \"%s\"", iter, err);
    }
    mb_tensor_free(t);
}

static void test_write_error(void **state)
{
    (void)state;
    char err[256] = "";
    mb_tensor *t = mb_tensor_new4(1, 1, 2, 2);
    assert_int_equal(mb_npy_write(t, "/nonexistent-dir/x.npy", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/x.npy"));
    mb_tensor_free(t);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    snprintf(dir, sizeof dir, "%s/mecbed-npy-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_shapes),
        cmocka_unit_test(test_reads_numpy_layout),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_finite_and_regular_only),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_write_error),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
