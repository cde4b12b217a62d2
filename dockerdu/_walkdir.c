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

struct walk {
    unsigned long long dev, blocks, inodes, files, size, entries;
    long long newest;
    int depth;
    PyObject *dirs, *multi, *errors;
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
append_new(PyObject *list, PyObject *item)
{
    if (item == NULL) {
        return -1;
    }
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/* `name` (NULL: the dir itself) below the dir whose path is w->path[:len]. */
static PyObject *
path_of(struct walk *w, size_t len, const char *name)
{
    if (name == NULL) {
        return PyUnicode_DecodeFSDefaultAndSize(w->path, (Py_ssize_t)len);
    }
    if (len == 0) {
        return PyUnicode_DecodeFSDefault(name);
    }
    size_t n = strlen(name);
    char buf[sizeof w->path + NAME_MAX + 1];
    memcpy(buf, w->path, len);
    buf[len] = '/';
    memcpy(buf + len + 1, name, n);
    return PyUnicode_DecodeFSDefaultAndSize(buf, (Py_ssize_t)(len + 1 + n));
}

static int
add_error(struct walk *w, size_t len, const char *name, int err)
{
    return append_new(w->errors, Py_BuildValue("(Ni)", path_of(w, len, name), err));
}

/* List the dir open as `fd` (path w->path[:len], `level` below the top), stat its
 * entries, and walk its subdirs within reach. Returns -1 with a Python error set, or
 * when the top dir's listing failed (errno set, no Python error). */
static int
list_dir(struct walk *w, int fd, int level, size_t len)
{
    if (w->bufs[level] == NULL && (w->bufs[level] = PyMem_Malloc(LIST_BUF)) == NULL) {
        PyErr_NoMemory();
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
                return add_error(w, len, NULL, errno);
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
                if (append_new(w->dirs, Py_BuildValue("(NK)", path_of(w, len, name),
                                                      (unsigned long long)st.st_ino)) < 0) {
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
            if (append_new(w->multi, Py_BuildValue("(KKK)", (unsigned long long)st.st_ino,
                                                   (unsigned long long)st.st_blocks,
                                                   (unsigned long long)st.st_size)) < 0) {
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
    w.dirs = PyList_New(0);
    w.multi = PyList_New(0);
    w.errors = PyList_New(0);
    if (w.dirs == NULL || w.multi == NULL || w.errors == NULL) {
        goto fail;
    }
    /* List from the start, and leave the offset there again (as os.scandir does
     * with a dir fd), so the caller's fd can be listed again. */
    if (lseek(fd, 0, SEEK_SET) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    int rc = list_dir(&w, fd, 0, 0);
    if (rc < 0 && !PyErr_Occurred()) {
        PyErr_SetFromErrno(PyExc_OSError);
    }
    lseek(fd, 0, SEEK_SET);
    for (int i = 0; i <= MAX_DEPTH; i++) {
        PyMem_Free(w.bufs[i]);
    }
    if (rc < 0) {
        goto fail;
    }
    return Py_BuildValue("(KKKKKNNNL)", w.blocks, w.inodes, w.files, w.size, w.entries,
                         w.dirs, w.multi, w.errors, w.newest);

fail:
    Py_XDECREF(w.dirs);
    Py_XDECREF(w.multi);
    Py_XDECREF(w.errors);
    return NULL;
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
