/*
 * dockerdu._walkdir: list one open directory and stat every entry in it, in C.
 *
 * The walk in measure.py spends nearly all its time in one loop: for each entry
 * of a directory, fstatat() it and add its blocks to its owner. In Python each
 * stat costs about twice the system call itself; this module runs that loop for
 * one directory at a time and hands back only the sums, the subdirectories and
 * the inodes with more than one link. measure.py keeps a pure-Python loop with
 * the same results, used when this module was not built.
 *
 * Safety: nothing here builds a path. Entries are named relative to the
 * directory fd the caller opened, and stat never follows a symlink.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

PyDoc_STRVAR(scan_doc,
"scan(fd, dev) -> (blocks, inodes, files, size, entries, dirs, multi, errors, newest)\n\n"
"Stat every entry of the directory open as `fd` (not followed if a symlink).\n"
"Entries on a device other than `dev` (mount points) are left out. Directories\n"
"and single-link non-directories are summed: `blocks` (512-byte units) and\n"
"`inodes` over both, `files` and `size` (st_size) over the non-directories.\n"
"`entries` counts every entry on `dev`. `dirs` is a list of (name, ino) of the\n"
"subdirectories, `multi` a list of (ino, blocks, size) of non-directories with\n"
"more than one link (not in the sums), `errors` a list of (name, errno) of\n"
"entries that could not be stat'ed (an entry removed meanwhile is skipped).\n"
"`newest` is the latest st_ctime of the entries on `dev`, in nanoseconds (0: none).\n"
"Names are decoded as os.scandir decodes them. `fd` stays open.");

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

static PyObject *
scan(PyObject *Py_UNUSED(self), PyObject *args)
{
    int fd;
    unsigned long long dev;
    if (!PyArg_ParseTuple(args, "iK:scan", &fd, &dev)) {
        return NULL;
    }
    PyObject *dirs = PyList_New(0);
    PyObject *multi = PyList_New(0);
    PyObject *errors = PyList_New(0);
    if (dirs == NULL || multi == NULL || errors == NULL) {
        goto fail;
    }
    int own = dup(fd);
    if (own < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    DIR *dir = fdopendir(own);
    if (dir == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        close(own);
        goto fail;
    }
    /* The dup shares the fd's offset: list from the start, and leave it there again
     * (as os.scandir does with a dir fd), so the caller's fd can be listed again. */
    rewinddir(dir);
    unsigned long long blocks = 0, inodes = 0, files = 0, size = 0, entries = 0;
    long long newest = 0;
    for (;;) {
        errno = 0;
        struct dirent *d = readdir(dir);
        if (d == NULL) {
            if (errno != 0) {
                PyErr_SetFromErrno(PyExc_OSError);
                rewinddir(dir);
                closedir(dir);
                goto fail;
            }
            break;
        }
        const char *name = d->d_name;
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) {
            continue;
        }
        struct stat st;
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) {
                continue;
            }
            if (append_new(errors, Py_BuildValue("(Ni)", PyUnicode_DecodeFSDefault(name), errno)) < 0) {
                closedir(dir);
                goto fail;
            }
            continue;
        }
        if ((unsigned long long)st.st_dev != dev) {
            continue;
        }
        entries++;
        long long ctime_ns = (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
        if (ctime_ns > newest) {
            newest = ctime_ns;
        }
        if (S_ISDIR(st.st_mode)) {
            blocks += (unsigned long long)st.st_blocks;
            inodes++;
            if (append_new(dirs, Py_BuildValue("(NK)", PyUnicode_DecodeFSDefault(name),
                                               (unsigned long long)st.st_ino)) < 0) {
                closedir(dir);
                goto fail;
            }
        } else if (st.st_nlink > 1) {
            if (append_new(multi, Py_BuildValue("(KKK)", (unsigned long long)st.st_ino,
                                                (unsigned long long)st.st_blocks,
                                                (unsigned long long)st.st_size)) < 0) {
                closedir(dir);
                goto fail;
            }
        } else {
            blocks += (unsigned long long)st.st_blocks;
            inodes++;
            files++;
            size += (unsigned long long)st.st_size;
        }
    }
    rewinddir(dir);
    closedir(dir);
    return Py_BuildValue("(KKKKKNNNL)", blocks, inodes, files, size, entries, dirs, multi, errors, newest);

fail:
    Py_XDECREF(dirs);
    Py_XDECREF(multi);
    Py_XDECREF(errors);
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
