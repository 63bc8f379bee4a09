/* sqlkv.dbapi2._speedups: the hot paths of cursor.py in C (optional; cursor.py is the
 * reference and the fallback, and every line here mirrors a line there).
 *
 * - CursorBase: the base type of sqlkv.dbapi2.Cursor holding the state every execute
 *   writes (the slots of the pure-Python Cursor), with iteration and fetchone in C: the
 *   end of the rows returns NULL without raising StopIteration, and no Python frame runs
 *   while rows are plain (no row_factory, str text, no converters).
 * - execute: Connection.execute (execute_on_new_cursor) for a statement seen before on
 *   the owner's thread; anything else goes to the Python code.
 * - ConnectionBase: the base type of sqlkv.dbapi2.Connection holding the attributes the
 *   hot paths read (_fast_thread, _apsw, row_factory, _begins, _plain_text) as C fields.
 *
 * Whatever is not the plain case calls back into Python (install() passes the helpers),
 * so the behaviour is the Python code's. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <pythread.h>

typedef struct {
    PyObject_HEAD
    PyObject *ahead;
    PyObject *apsw;
    PyObject *connection;
    PyObject *params;
    PyObject *rows;
    PyObject *sql;
    PyObject *lastrowid;
    PyObject *row_factory;
    PyObject *rowcount;
    char closed;      /* _closed */
    char dml_pending; /* _dml_pending: DML with RETURNING whose rows are not all read */
} CursorBase;

/* the state of sqlkv.dbapi2.Connection that the hot paths read, as C fields (Python code
 * reads and writes them as attributes, exactly as before) */
typedef struct {
    PyObject_HEAD
    PyObject *fast_thread;
    PyObject *apsw;
    PyObject *row_factory;
    PyObject *begins;
    PyObject *plain_text;
} ConnectionBase;

static PyTypeObject *connection_base; /* set at import */

/* set by install() */
static PyObject *kinds;            /* statement.kinds */
static PyTypeObject *cursor_type;  /* sqlkv.dbapi2.Cursor */
static PyObject *slow_execute;     /* f(connection, sql, params): the checked path */
static PyObject *raise_mapped;     /* f(exc, mapper): raise mapper(exc) from exc */
static PyObject *translate;        /* exceptions.translate */
static PyObject *binding_error;    /* exceptions.binding_error */
static PyObject *minus_one;
static PyObject *end_marker; /* _fetch_checked's answer at the end, for iteration */

static PyObject *s_fast_thread, *s_row_factory, *s_apsw, *s_begins, *s_in_transaction,
    *s_begin_implicitly, *s_cursor, *s_execute, *s_fetchone, *s_changes,
    *s_last_insert_rowid, *s_started_returning, *s_plain_text, *s_shape, *s_fetch_checked,
    *s_finish_returning;

static int
conn_traverse(ConnectionBase *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fast_thread);
    Py_VISIT(self->apsw);
    Py_VISIT(self->row_factory);
    Py_VISIT(self->begins);
    Py_VISIT(self->plain_text);
    return 0;
}

static int
conn_clear(ConnectionBase *self)
{
    Py_CLEAR(self->fast_thread);
    Py_CLEAR(self->apsw);
    Py_CLEAR(self->row_factory);
    Py_CLEAR(self->begins);
    Py_CLEAR(self->plain_text);
    return 0;
}

static void
conn_dealloc(ConnectionBase *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    conn_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

#define CONN_MEMBER(name, field) {name, T_OBJECT_EX, offsetof(ConnectionBase, field), 0, NULL}
static PyMemberDef conn_members[] = {
    CONN_MEMBER("_fast_thread", fast_thread),
    CONN_MEMBER("_apsw", apsw),
    CONN_MEMBER("row_factory", row_factory),
    CONN_MEMBER("_begins", begins),
    CONN_MEMBER("_plain_text", plain_text),
    {NULL},
};

static PyType_Slot conn_slots[] = {
    {Py_tp_doc, "The state of sqlkv.dbapi2.Connection that its hot paths read, in C."},
    {Py_tp_dealloc, conn_dealloc},
    {Py_tp_traverse, conn_traverse},
    {Py_tp_clear, conn_clear},
    {Py_tp_members, conn_members},
    {Py_tp_new, PyType_GenericNew},
    {0, NULL},
};

static PyType_Spec conn_spec = {
    "sqlkv.dbapi2._speedups.ConnectionBase",
    sizeof(ConnectionBase),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    conn_slots,
};

/* a field of a connection: the C field of a ConnectionBase, else the attribute
 * (a new reference; NULL with AttributeError when unset, as for any attribute) */
static PyObject *
conn_field(PyObject *connection, size_t offset, PyObject *name)
{
    if (PyObject_TypeCheck(connection, connection_base)) {
        PyObject *value = *(PyObject **)((char *)connection + offset);
        if (value == NULL) {
            PyErr_SetObject(PyExc_AttributeError, name);
            return NULL;
        }
        Py_INCREF(value);
        return value;
    }
    return PyObject_GetAttr(connection, name);
}
#define FIELD(connection, field, name) \
    conn_field(connection, offsetof(ConnectionBase, field), name)

static int
cb_traverse(CursorBase *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->ahead);
    Py_VISIT(self->apsw);
    Py_VISIT(self->connection);
    Py_VISIT(self->params);
    Py_VISIT(self->rows);
    Py_VISIT(self->sql);
    Py_VISIT(self->lastrowid);
    Py_VISIT(self->row_factory);
    Py_VISIT(self->rowcount);
    return 0;
}

static int
cb_clear(CursorBase *self)
{
    Py_CLEAR(self->ahead);
    Py_CLEAR(self->apsw);
    Py_CLEAR(self->connection);
    Py_CLEAR(self->params);
    Py_CLEAR(self->rows);
    Py_CLEAR(self->sql);
    Py_CLEAR(self->lastrowid);
    Py_CLEAR(self->row_factory);
    Py_CLEAR(self->rowcount);
    return 0;
}

static void
cb_dealloc(CursorBase *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    cb_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* the exception being raised, mapped by `mapper` and raised from it (as
 * `except BaseException as exc: raise mapper(exc) from exc`); returns NULL */
static PyObject *
reraise_mapped(PyObject *mapper)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value == NULL)
        return NULL;
    PyObject *handled = PyErr_GetHandledException();
    PyErr_SetHandledException(value);
    PyObject *res = PyObject_CallFunctionObjArgs(raise_mapped, value, mapper, NULL);
    PyErr_SetHandledException(handled);
    Py_XDECREF(handled);
    Py_DECREF(value);
    Py_XDECREF(res);
    return NULL;
}

static int
on_owner_thread(PyObject *connection)
{
    PyObject *owner = FIELD(connection, fast_thread, s_fast_thread);
    if (owner == NULL)
        return -1;
    int same = 0;
    if (PyLong_CheckExact(owner)) {
        unsigned long id = PyLong_AsUnsignedLong(owner);
        if (id == (unsigned long)-1 && PyErr_Occurred()) {
            Py_DECREF(owner);
            return -1;
        }
        same = id == PyThread_get_thread_ident();
    }
    Py_DECREF(owner);
    return same;
}

/* the row to return now, after reading the next one (Cursor.fetchone / __next__ of
 * cursor.py); `end` (borrowed, or NULL for "no exception, no value") when no rows are left */
static PyObject *
cb_step(CursorBase *self, PyObject *end)
{
    PyObject *connection = self->connection;
    if (connection == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_connection");
        return NULL;
    }
    int same = on_owner_thread(connection);
    if (same < 0)
        return NULL;
    if (!same) {
        PyObject *marker = end == NULL ? end_marker : end;
        PyObject *row = PyObject_CallMethodOneArg((PyObject *)self, s_fetch_checked, marker);
        if (row == end_marker) {
            Py_DECREF(row);
            return NULL;
        }
        return row;
    }
    PyObject *cur = self->rows;
    if (cur == NULL || cur == Py_None) {
        if (self->closed) {
            /* the Python code raises the closed-cursor error */
            return PyObject_CallMethodOneArg((PyObject *)self, s_fetch_checked, Py_None);
        }
        if (end == NULL)
            return NULL;
        Py_INCREF(end);
        return end;
    }
    PyObject *row = self->ahead;
    if (row == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_ahead");
        return NULL;
    }
    Py_INCREF(row);
    Py_INCREF(cur);
    PyObject *ahead = PyObject_CallMethodNoArgs(cur, s_fetchone);
    Py_DECREF(cur);
    if (ahead == NULL) {
        Py_DECREF(row);
        Py_INCREF(Py_None);
        Py_XSETREF(self->rows, Py_None);
        return reraise_mapped(translate);
    }
    if (ahead == Py_None) {
        Py_DECREF(ahead);
        Py_INCREF(Py_None);
        Py_XSETREF(self->rows, Py_None);
        if (self->dml_pending) {
            PyObject *done = PyObject_CallMethodNoArgs((PyObject *)self, s_finish_returning);
            if (done == NULL) {
                Py_DECREF(row);
                return NULL;
            }
            Py_DECREF(done);
        }
    }
    else {
        Py_XSETREF(self->ahead, ahead);
    }
    if (self->row_factory == Py_None) {
        PyObject *plain = FIELD(connection, plain_text, s_plain_text);
        if (plain == NULL) {
            Py_DECREF(row);
            return NULL;
        }
        Py_DECREF(plain);
        if (plain == Py_True)
            return row;
    }
    PyObject *shaped = PyObject_CallMethodOneArg((PyObject *)self, s_shape, row);
    Py_DECREF(row);
    return shaped;
}

static PyObject *
cb_iternext(CursorBase *self)
{
    return cb_step(self, NULL);
}

static PyObject *
cb_fetchone(CursorBase *self, PyObject *Py_UNUSED(ignored))
{
    return cb_step(self, Py_None);
}

static PyMethodDef cb_methods[] = {
    {"fetchone", (PyCFunction)cb_fetchone, METH_NOARGS, NULL},
    {NULL},
};

#define MEMBER(name, field) {name, T_OBJECT_EX, offsetof(CursorBase, field), 0, NULL}
static PyMemberDef cb_members[] = {
    MEMBER("_ahead", ahead),
    MEMBER("_apsw", apsw),
    MEMBER("_connection", connection),
    MEMBER("_params", params),
    MEMBER("_rows", rows),
    MEMBER("_sql", sql),
    MEMBER("lastrowid", lastrowid),
    MEMBER("row_factory", row_factory),
    MEMBER("rowcount", rowcount),
    {"_closed", T_BOOL, offsetof(CursorBase, closed), 0, NULL},
    {"_dml_pending", T_BOOL, offsetof(CursorBase, dml_pending), 0, NULL},
    {NULL},
};

static PyType_Slot cb_slots[] = {
    {Py_tp_doc, "The state and the fetching of sqlkv.dbapi2.Cursor, in C."},
    {Py_tp_dealloc, cb_dealloc},
    {Py_tp_traverse, cb_traverse},
    {Py_tp_clear, cb_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, cb_iternext},
    {Py_tp_methods, cb_methods},
    {Py_tp_members, cb_members},
    {Py_tp_new, PyType_GenericNew},
    {0, NULL},
};

static PyType_Spec cb_spec = {
    "sqlkv.dbapi2._speedups.CursorBase",
    sizeof(CursorBase),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    cb_slots,
};

/* Connection.execute: execute_on_new_cursor of new_cursor.py */
static PyObject *
execute(PyObject *connection, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1)
        return PyErr_Format(PyExc_TypeError, "execute expected at least 1 argument, got %zd",
                            nargs);
    if (nargs > 2)
        return PyErr_Format(PyExc_TypeError, "execute expected at most 2 arguments, got %zd",
                            nargs);
    PyObject *sql = args[0];
    PyObject *parameters = nargs == 2 ? args[1] : NULL;
    long k = -1; /* the statement's kind (statement.kinds), -1 when not known */
    if (PyUnicode_CheckExact(sql)) {
        PyObject *kind = PyDict_GetItemWithError(kinds, sql); /* borrowed: read at once */
        if (kind == NULL && PyErr_Occurred())
            return NULL;
        if (kind != NULL) {
            k = PyLong_AsLong(kind);
            if (k == -1 && PyErr_Occurred())
                return NULL;
        }
    }
    int same = k < 0 ? 0 : on_owner_thread(connection);
    if (same < 0)
        return NULL;
    if (!same) {
        PyObject *call[3] = {connection, sql, parameters};
        if (parameters == NULL) {
            call[2] = PyTuple_New(0);
            if (call[2] == NULL)
                return NULL;
            PyObject *res = PyObject_Vectorcall(slow_execute, call, 3, NULL);
            Py_DECREF(call[2]);
            return res;
        }
        return PyObject_Vectorcall(slow_execute, call, 3, NULL);
    }
    PyObject *empty = NULL;
    if (parameters == NULL) {
        parameters = empty = PyTuple_New(0);
        if (empty == NULL)
            return NULL;
    }
    CursorBase *cursor = NULL;
    PyObject *conn = NULL, *cur = NULL, *res = NULL, *value = NULL;
    cursor = (CursorBase *)cursor_type->tp_alloc(cursor_type, 0);
    if (cursor == NULL)
        goto fail;
    Py_INCREF(connection);
    cursor->connection = connection;
    cursor->row_factory = FIELD(connection, row_factory, s_row_factory);
    if (cursor->row_factory == NULL)
        goto fail;
    conn = FIELD(connection, apsw, s_apsw);
    if (conn == NULL)
        goto fail;
    if (k) {
        PyObject *begins = FIELD(connection, begins, s_begins);
        if (begins == NULL)
            goto fail;
        int b = PyObject_IsTrue(begins);
        Py_DECREF(begins);
        if (b < 0)
            goto fail;
        if (b) {
            PyObject *in_tx = PyObject_GetAttr(conn, s_in_transaction);
            if (in_tx == NULL)
                goto fail;
            int t = PyObject_IsTrue(in_tx);
            Py_DECREF(in_tx);
            if (t < 0)
                goto fail;
            if (!t) {
                res = PyObject_CallMethodNoArgs(connection, s_begin_implicitly);
                if (res == NULL)
                    goto fail;
                Py_CLEAR(res);
            }
        }
    }
    cur = PyObject_CallMethodNoArgs(conn, s_cursor);
    if (cur == NULL)
        goto fail;
    Py_INCREF(cur);
    cursor->apsw = cur;
    {
        /* call[0] is free for the callee (PY_VECTORCALL_ARGUMENTS_OFFSET) */
        PyObject *call[4] = {NULL, cur, sql, parameters};
        res = PyObject_VectorcallMethod(s_execute, call + 1,
                                        3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    if (res == NULL) {
        reraise_mapped(binding_error);
        goto fail;
    }
    Py_CLEAR(res);
    Py_INCREF(sql);
    cursor->sql = sql;
    Py_INCREF(parameters);
    cursor->params = parameters;
    if (k == 0) {
        Py_INCREF(minus_one);
        cursor->rowcount = minus_one;
        value = PyObject_CallMethodNoArgs(cur, s_fetchone);
        if (value == NULL)
            goto fail;
        cursor->ahead = value;
        if (value == Py_None) {
            Py_INCREF(Py_None);
            cursor->rows = Py_None;
        }
        else {
            Py_INCREF(cur);
            cursor->rows = cur;
        }
        value = NULL;
    }
    else if (k == 1) {
        Py_INCREF(Py_None);
        cursor->rows = Py_None;
        cursor->rowcount = PyObject_CallMethodNoArgs(conn, s_changes);
        if (cursor->rowcount == NULL)
            goto fail;
    }
    else {
        Py_INCREF(Py_None);
        cursor->rows = Py_None;
        res = PyObject_CallMethodObjArgs((PyObject *)cursor, s_started_returning, conn, cur,
                                         NULL);
        if (res == NULL)
            goto fail;
        Py_CLEAR(res);
    }
    cursor->lastrowid = PyObject_CallMethodNoArgs(conn, s_last_insert_rowid);
    if (cursor->lastrowid == NULL)
        goto fail;
    Py_DECREF(conn);
    Py_DECREF(cur);
    Py_XDECREF(empty);
    return (PyObject *)cursor;
fail:
    Py_XDECREF(cursor);
    Py_XDECREF(conn);
    Py_XDECREF(cur);
    Py_XDECREF(empty);
    return NULL;
}

static PyMethodDef execute_def = {"execute", (PyCFunction)(void (*)(void))execute,
                                  METH_FASTCALL, NULL};

/* install(Cursor, Connection, kinds, slow_execute, raise_mapped, translate, binding_error):
 * sets Connection.execute to the C method */
static PyObject *
install(PyObject *module, PyObject *args)
{
    PyObject *cursor, *connection_cls, *k, *slow, *raiser, *tr, *be;
    if (!PyArg_ParseTuple(args, "O!O!O!OOOO", &PyType_Type, &cursor, &PyType_Type,
                          &connection_cls, &PyDict_Type, &k, &slow, &raiser, &tr, &be))
        return NULL;
    Py_INCREF(cursor);
    Py_XSETREF(cursor_type, (PyTypeObject *)cursor);
    Py_INCREF(k);
    Py_XSETREF(kinds, k);
    Py_INCREF(slow);
    Py_XSETREF(slow_execute, slow);
    Py_INCREF(raiser);
    Py_XSETREF(raise_mapped, raiser);
    Py_INCREF(tr);
    Py_XSETREF(translate, tr);
    Py_INCREF(be);
    Py_XSETREF(binding_error, be);
    PyObject *descr = PyDescr_NewMethod((PyTypeObject *)connection_cls, &execute_def);
    if (descr == NULL)
        return NULL;
    int rc = PyObject_SetAttrString(connection_cls, "execute", descr);
    Py_DECREF(descr);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"install", install, METH_VARARGS, NULL},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, module_methods,
};

#define INTERN(var, text)                                  \
    if ((var = PyUnicode_InternFromString(text)) == NULL) \
        return NULL;

PyMODINIT_FUNC
PyInit__speedups(void)
{
    INTERN(s_fast_thread, "_fast_thread");
    INTERN(s_row_factory, "row_factory");
    INTERN(s_apsw, "_apsw");
    INTERN(s_begins, "_begins");
    INTERN(s_in_transaction, "in_transaction");
    INTERN(s_begin_implicitly, "_begin_implicitly");
    INTERN(s_cursor, "cursor");
    INTERN(s_execute, "execute");
    INTERN(s_fetchone, "fetchone");
    INTERN(s_changes, "changes");
    INTERN(s_last_insert_rowid, "last_insert_rowid");
    INTERN(s_started_returning, "_started_returning");
    INTERN(s_plain_text, "_plain_text");
    INTERN(s_shape, "_shape");
    INTERN(s_fetch_checked, "_fetch_checked");
    INTERN(s_finish_returning, "_finish_returning");
    end_marker = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (end_marker == NULL)
        return NULL;
    minus_one = PyLong_FromLong(-1);
    if (minus_one == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    PyObject *cbase = PyType_FromSpec(&conn_spec);
    if (cbase == NULL || PyModule_AddObject(m, "ConnectionBase", cbase) < 0) {
        Py_XDECREF(cbase);
        Py_DECREF(m);
        return NULL;
    }
    connection_base = (PyTypeObject *)cbase;
    Py_INCREF(cbase); /* kept: the module's reference went to the module */
    PyObject *base = PyType_FromSpec(&cb_spec);
    if (base == NULL || PyModule_AddObject(m, "CursorBase", base) < 0) {
        Py_XDECREF(base);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
