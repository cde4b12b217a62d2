/*
 * dockerdu._walkdir: list an open directory and stat every entry in it, in C, and
 * walk the subdirectories within reach in the same call.
 *
 * The walk in measure.py spends nearly all its time in one loop: for each entry
 * of a directory, fstatat() it and add its blocks to its owner. In Python each
 * stat costs about twice the system call itself, and each directory as much
 * again; this module runs that loop for a whole subtree in which every entry has
 * one owner, and hands back only the sums, the subdirectories out of reach and
 * the inodes with more than one link. measure.py keeps a pure-Python loop with
 * the same results, used when this module was not built.
 *
 * The walk runs without the GIL (what it hands back is kept in C buffers meanwhile and
 * made into Python objects at the end), so that several threads walk at once.
 *
 * Safety: no path is opened. Each subdirectory is opened relative to its parent's
 * fd, with O_NOFOLLOW, and walked only if fstat shows the inode the listing
 * showed; stat never follows a symlink. Paths are built only for the caller.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

PyDoc_STRVAR(scan_doc,
"scan(fd, dev, depth=0) -> (blocks, inodes, files, size, entries, dirs, multi, errors, newest)\n\n"
"Stat every entry of the directory open as `fd` (not followed if a symlink), and\n"
"walk its subdirectories down to `depth` levels below it in the same call.\n"
"Entries on a device other than `dev` (mount points) are left out. Directories\n"
"and single-link non-directories are summed: `blocks` (512-byte units) and\n"
"`inodes` over both, `files` and `size` (st_size) over the non-directories.\n"
"`entries` counts every entry on `dev`. `dirs` is a list of (path, ino) of the\n"
"subdirectories counted but not walked (the caller walks them), `multi` a list of\n"
"(ino, blocks, size) of non-directories with more than one link (not in the sums),\n"
"`errors` a list of (path, errno) of entries that could not be stat'ed, of dirs\n"
"that could not be opened or listed (an entry removed meanwhile is skipped).\n"
"`newest` is the latest st_ctime of the entries on `dev`, in nanoseconds (0: none).\n"
"Paths are relative to `fd`, decoded as os.scandir decodes names. `fd` stays open.");

/* A subdirectory is walked in the same call while its path from the top stays
 * this short; a deeper one is handed back, and the caller opens it through an
 * ancestor of its own (measure.py keeps every path it opens below PATH_MAX). */
#define REL_MAX 1024
#define MAX_DEPTH 64
/* Directories are read with getdents64 into one buffer per level: no DIR stream,
 * whose fdopendir costs an fstat and two fcntl calls per directory. */
#define LIST_BUF 32768

struct linux_dirent64 {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* A growable byte buffer of records, filled while the GIL is released. */
struct records {
    char *data;
    size_t len, cap;
};

struct walk {
    unsigned long long dev, blocks, inodes, files, size, entries;
    long long newest;
    int depth;
    int nomem;
    /* dirs: (ino, path length, path); multi: (ino, blocks, size); errors: (errno, length, path) */
    struct records dirs, multi, errors;
    char *bufs[MAX_DEPTH + 1];
    char path[REL_MAX + NAME_MAX + 2];
};

/* O_NOATIME while the kernel allows it (to an inode's owner or a privileged process). */
static int noatime = O_NOATIME;

static int
open_subdir(int parent, const char *name)
{
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
    if (noatime) {
        int fd = openat(parent, name, flags | noatime);
        if (fd >= 0 || errno != EPERM) {
            return fd;
        }
        noatime = 0;
    }
    return openat(parent, name, flags);
}

static int
put(struct walk *w, struct records *r, const void *data, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        while (cap < r->len + n) {
            cap *= 2;
        }
        char *grown = PyMem_RawRealloc(r->data, cap);
        if (grown == NULL) {
            w->nomem = 1;
            return -1;
        }
        r->data = grown;
        r->cap = cap;
    }
    memcpy(r->data + r->len, data, n);
    r->len += n;
    return 0;
}

/* A record of `head` (hlen bytes), then the path of `name` (NULL: the dir itself) below
 * the dir whose path is w->path[:len], as its length and its bytes. */
static int
put_path(struct walk *w, struct records *r, const void *head, size_t hlen, size_t len, const char *name)
{
    unsigned int n = (unsigned int)len;
    size_t name_len = name == NULL ? 0 : strlen(name);
    if (name != NULL) {
        n = (unsigned int)(len == 0 ? name_len : len + 1 + name_len);
    }
    if (put(w, r, head, hlen) < 0 || put(w, r, &n, sizeof n) < 0) {
        return -1;
    }
    if (name == NULL || len > 0) {
        if (put(w, r, w->path, len) < 0) {
            return -1;
        }
    }
    if (name != NULL) {
        if (len > 0 && put(w, r, "/", 1) < 0) {
            return -1;
        }
        if (put(w, r, name, name_len) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
add_error(struct walk *w, size_t len, const char *name, int err)
{
    return put_path(w, &w->errors, &err, sizeof err, len, name);
}

/* List the dir open as `fd` (path w->path[:len], `level` below the top), stat its
 * entries, and walk its subdirs within reach; runs without the GIL. Returns -1 when
 * out of memory (w->nomem set), or when the top dir's listing failed (errno set). */
static int
list_dir(struct walk *w, int fd, int level, size_t len)
{
    if (w->bufs[level] == NULL && (w->bufs[level] = PyMem_RawMalloc(LIST_BUF)) == NULL) {
        w->nomem = 1;
        return -1;
    }
    char *buf = w->bufs[level];
    long got = 0, at = 0;
    for (;;) {
        if (at >= got) {
            got = syscall(SYS_getdents64, fd, buf, LIST_BUF);
            at = 0;
            if (got == 0) {
                return 0;
            }
            if (got < 0) {
                if (level == 0) {
                    return -1;
                }
                /* ENOENT: the dir was removed while it was listed (a daemon at work): gone, not
                 * unreadable. */
                return errno == ENOENT ? 0 : add_error(w, len, NULL, errno);
            }
        }
        struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + at);
        at += d->d_reclen;
        const char *name = d->d_name;
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) {
            continue;
        }
        struct stat st;
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT && add_error(w, len, name, errno) < 0) {
                return -1;
            }
            continue;
        }
        if ((unsigned long long)st.st_dev != w->dev) {
            continue;
        }
        w->entries++;
        long long ctime_ns = (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
        if (ctime_ns > w->newest) {
            w->newest = ctime_ns;
        }
        if (S_ISDIR(st.st_mode)) {
            w->blocks += (unsigned long long)st.st_blocks;
            w->inodes++;
            size_t n = strlen(name);
            size_t sub_len = len == 0 ? n : len + 1 + n;
            if (level >= w->depth || sub_len > REL_MAX) {
                unsigned long long ino = (unsigned long long)st.st_ino;
                if (put_path(w, &w->dirs, &ino, sizeof ino, len, name) < 0) {
                    return -1;
                }
                continue;
            }
            int sub = open_subdir(fd, name);
            if (sub < 0) {
                /* Gone, or replaced by a file or a symlink (ELOOP) since it was listed: not ours. */
                if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP &&
                    add_error(w, len, name, errno) < 0) {
                    return -1;
                }
                continue;
            }
            struct stat now;
            if (fstat(sub, &now) != 0) {
                int err = errno;
                close(sub);
                if (add_error(w, len, name, err) < 0) {
                    return -1;
                }
                continue;
            }
            if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
                close(sub);  /* replaced since it was listed */
                continue;
            }
            if (len > 0) {
                w->path[len] = '/';
            }
            memcpy(w->path + (len > 0 ? len + 1 : 0), name, n);
            int rc = list_dir(w, sub, level + 1, sub_len);
            close(sub);
            if (rc < 0) {
                return -1;
            }
        } else if (st.st_nlink > 1) {
            unsigned long long rec[3] = {(unsigned long long)st.st_ino,
                                         (unsigned long long)st.st_blocks,
                                         (unsigned long long)st.st_size};
            if (put(w, &w->multi, rec, sizeof rec) < 0) {
                return -1;
            }
        } else {
            w->blocks += (unsigned long long)st.st_blocks;
            w->inodes++;
            w->files++;
            w->size += (unsigned long long)st.st_size;
        }
    }
}

/* The records of `r` as a list of (path, number): `head` bytes (an unsigned long long
 * when `wide`, else an int), then the path's length and bytes. */
static PyObject *
paths_of(const struct records *r, int wide)
{
    PyObject *list = PyList_New(0);
    size_t at = 0, head = wide ? sizeof(unsigned long long) : sizeof(int);
    while (list != NULL && at < r->len) {
        unsigned long long number = 0;
        int err = 0;
        unsigned int n;
        if (wide) {
            memcpy(&number, r->data + at, head);
        } else {
            memcpy(&err, r->data + at, head);
        }
        memcpy(&n, r->data + at + head, sizeof n);
        at += head + sizeof n;
        PyObject *path = PyUnicode_DecodeFSDefaultAndSize(r->data + at, (Py_ssize_t)n);
        at += n;
        PyObject *item = path == NULL ? NULL : wide ? Py_BuildValue("(NK)", path, number)
                                                    : Py_BuildValue("(Ni)", path, err);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(item);
    }
    return list;
}

static PyObject *
multi_of(const struct records *r)
{
    size_t count = r->len / (3 * sizeof(unsigned long long));
    PyObject *list = PyList_New((Py_ssize_t)count);
    for (size_t i = 0; list != NULL && i < count; i++) {
        unsigned long long rec[3];
        memcpy(rec, r->data + i * sizeof rec, sizeof rec);
        PyObject *item = Py_BuildValue("(KKK)", rec[0], rec[1], rec[2]);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

static PyObject *
scan(PyObject *Py_UNUSED(self), PyObject *args)
{
    int fd;
    struct walk w = {0};
    if (!PyArg_ParseTuple(args, "iK|i:scan", &fd, &w.dev, &w.depth)) {
        return NULL;
    }
    if (w.depth > MAX_DEPTH) {
        w.depth = MAX_DEPTH;
    }
    PyObject *result = NULL;
    int rc, err = 0;
    Py_BEGIN_ALLOW_THREADS
    /* List from the start, and leave the offset there again (as os.scandir does
     * with a dir fd), so the caller's fd can be listed again. */
    rc = (int)lseek(fd, 0, SEEK_SET);
    if (rc >= 0) {
        rc = list_dir(&w, fd, 0, 0);
        err = errno;
        lseek(fd, 0, SEEK_SET);
    } else {
        err = errno;
    }
    for (int i = 0; i <= MAX_DEPTH; i++) {
        PyMem_RawFree(w.bufs[i]);
    }
    Py_END_ALLOW_THREADS
    if (w.nomem) {
        PyErr_NoMemory();
    } else if (rc < 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    } else {
        PyObject *dirs = paths_of(&w.dirs, 1);
        PyObject *multi = dirs == NULL ? NULL : multi_of(&w.multi);
        PyObject *errors = multi == NULL ? NULL : paths_of(&w.errors, 0);
        if (errors != NULL) {
            result = Py_BuildValue("(KKKKKNNNL)", w.blocks, w.inodes, w.files, w.size, w.entries,
                                   dirs, multi, errors, w.newest);
        } else {
            Py_XDECREF(dirs);
            Py_XDECREF(multi);
        }
    }
    PyMem_RawFree(w.dirs.data);
    PyMem_RawFree(w.multi.data);
    PyMem_RawFree(w.errors.data);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "dockerdu._walkdir",
    .m_doc = "One directory listed and stat'ed in C, for dockerdu's walk.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__walkdir(void)
{
    return PyModule_Create(&module);
}
