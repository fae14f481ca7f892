/* Bounded, regular-file-only opening of input files (include/mecbed/readfile.h).
 * O_NONBLOCK makes open() return at once on a FIFO with no writer (a plain
 * open would wait for one forever); fstat on the open descriptor then decides,
 * so a path swapped between a stat and the open cannot slip through. */
#include "mecbed/readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

int mb_open_regular(const char *path, int64_t max_bytes, int64_t *size, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: is %s, not a regular file", path, kind_of(st.st_mode));
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if ((int64_t)st.st_size > max_bytes) {
        snprintf(err, errlen, "%s: %lld bytes, more than the limit of %lld", path, (long long)st.st_size,
                 (long long)max_bytes);
        close(fd);
        errno = EFBIG;
        return -1;
    }
    /* back to blocking reads: a regular file never blocks, and stdio
     * treats EAGAIN as an error */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (size)
        *size = (int64_t)st.st_size;
    return fd;
}

FILE *mb_fopen_regular(const char *path, int64_t max_bytes, char *err, size_t errlen)
{
    int fd = mb_open_regular(path, max_bytes, NULL, err, errlen);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        close(fd);
        errno = e;
    }
    return f;
}
