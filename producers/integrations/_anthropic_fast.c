/* The per-chunk part of watching a streamed Messages API response, in C.
 *
 * Why C: on the caller's thread, between the anthropic client's own work, every Python
 * operation runs with cold caches (about 0.25 µs each, measured: bench/anthropic_overhead.py),
 * and a stream's watch needs some forty of them in Python. Here a stream costs one call to
 * install the watch, no Python frame per chunk, and one call at its close. Everything else
 * (parsing the kept chunks, building events) stays in Python, on the SDK's sender thread
 * (producers/integrations/anthropic_streams.py, which falls back to its Python watch when
 * this module is not built).
 *
 * A watch keeps references to the head chunks (up to the first that starts with a content
 * delta, each with its arrival time) and to the last TAIL_MAX chunks; it is its own
 * iterator over the inner byte stream, handing each chunk on untouched.
 *
 * The watch object is kept small (under pymalloc's 512 bytes): the first HEAD_INLINE head
 * chunks live in it, a longer head and the tail ring in arrays allocated when needed. In
 * situ, a 1.4 KB watch with every array inline (allocated by malloc and zeroed whole on
 * each call) cost about 1.5 µs more per stream than this one (bench/anthropic_overhead.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <time.h>

#define HEAD_MAX 64
#define HEAD_INLINE 8 /* one event a chunk, a head is 4: message_start, ping, block, delta */
#define TAIL_MAX 32 /* a power of two (the ring's index is masked) */
#if (TAIL_MAX & (TAIL_MAX - 1)) != 0
#error "TAIL_MAX must be a power of two"
#endif
#if defined(__GNUC__)
#define COLD __attribute__((noinline, cold))
#else
#define COLD
#endif

static const char CONTENT_EVENT[] = "event: content_block_delta";
#define CONTENT_EVENT_LEN ((Py_ssize_t)(sizeof(CONTENT_EVENT) - 1))

/* set by configure(): the jobs deferred at a stream's start and close */
static PyObject *report_started = NULL;
static PyObject *report_closed = NULL;
static PyTypeObject *watch_class = NULL;
static PyObject *sync_byte_stream = NULL;
static PyTypeObject *bound_stream_type = NULL; /* httpx's own body: checked first */
static PyObject *str_stream = NULL;
static PyObject *str_model = NULL;
static PyObject *str_usage = NULL;
static PyObject *str_body = NULL;
static PyObject *str_response = NULL;
static PyObject *where_reading = NULL;
static PyObject *str_close = NULL;
static PyObject *str_internal_error = NULL;
static PyObject *where_closing = NULL;
static PyObject *where_watching = NULL;
static PyObject *where_keeping = NULL;

typedef struct {
    PyObject_HEAD
    PyObject *inner;    /* the body httpx made; NULL once closed */
    PyObject *chunks;   /* iter(inner), while read */
    PyObject *response; /* until the first close */
    PyObject *defer;    /* takes one job tuple */
    PyObject *info;     /* (reporter, started, asked model, attribution, headers_at) */
    PyObject *call;
    PyObject *first_content_at;
    int looking;        /* still in the head */
    int n_head;
    int tail_next;      /* the ring's next slot */
    int n_tail;         /* tail[0 .. n_tail) are set */
    PyObject **head;    /* head_inline, or HEAD_MAX slots of the heap once longer */
    double *stamps;     /* stamps_inline, likewise */
    PyObject **tail;    /* TAIL_MAX slots of the heap, from the head's last chunk on */
    PyObject *head_inline[HEAD_INLINE];
    double stamps_inline[HEAD_INLINE];
} Watch;

/* time.perf_counter(), the same clock and the same rounding */
static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return (double)ns / 1e9;
}

static void drop_chunks(Watch *self) {
    int n_head = self->n_head, n_tail = self->n_tail;
    self->n_head = self->n_tail = self->tail_next = 0;
    for (int i = 0; i < n_head; i++) Py_DECREF(self->head[i]);
    for (int i = 0; i < n_tail; i++) Py_DECREF(self->tail[i]);
    if (self->head != self->head_inline) {
        PyMem_Free(self->head);
        PyMem_Free(self->stamps);
    }
    self->head = self->head_inline;
    self->stamps = self->stamps_inline;
    PyMem_Free(self->tail);
    self->tail = NULL;
}

static int watch_traverse(Watch *self, visitproc visit, void *arg) {
    Py_VISIT(self->inner);
    Py_VISIT(self->chunks);
    Py_VISIT(self->response);
    Py_VISIT(self->defer);
    Py_VISIT(self->info);
    Py_VISIT(self->call);
    Py_VISIT(self->first_content_at);
    return 0; /* (chunks are bytes: no references to traverse) */
}

static int watch_clear(Watch *self) {
    Py_CLEAR(self->inner);
    Py_CLEAR(self->chunks);
    Py_CLEAR(self->response);
    Py_CLEAR(self->defer);
    Py_CLEAR(self->info);
    Py_CLEAR(self->call);
    Py_CLEAR(self->first_content_at);
    drop_chunks(self);
    return 0;
}

static void watch_dealloc(Watch *self) {
    PyObject_GC_UnTrack(self);
    watch_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self); /* (a subclass's dealloc drops its type) */
}

/* A failure of ours: counted by the reporter, never raised into the caller. */
static void internal_error(Watch *self, PyObject *where) {
    PyObject *exc_type, *exc, *tb;
    PyErr_Fetch(&exc_type, &exc, &tb);
    PyErr_NormalizeException(&exc_type, &exc, &tb);
    if (self->info != NULL && PyTuple_Check(self->info) && PyTuple_GET_SIZE(self->info) > 0) {
        PyObject *reporter = PyTuple_GET_ITEM(self->info, 0);
        PyObject *got = PyObject_CallMethodObjArgs(
            reporter, str_internal_error, where, exc != NULL ? exc : Py_None, NULL);
        Py_XDECREF(got);
        PyErr_Clear();
    }
    Py_XDECREF(exc_type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
}

static inline void tail_put(Watch *self, PyObject *chunk) {
    unsigned next = self->tail_next;
    PyObject *old = NULL;
    if (self->n_tail < TAIL_MAX) {
        self->n_tail++;
    } else {
        old = self->tail[next];
    }
    Py_INCREF(chunk);
    self->tail[next] = chunk;
    self->tail_next = (next + 1) & (TAIL_MAX - 1);
    Py_XDECREF(old);
}

/* Room for the head past its inline slots, or for the tail: 0, or -1 with no room (the
 * allocation failed: counted, and the chunks are handed on unkept, never failing the read). */
static int grow_head(Watch *self) {
    PyObject **head = PyMem_Malloc(HEAD_MAX * sizeof(PyObject *));
    double *stamps = PyMem_Malloc(HEAD_MAX * sizeof(double));
    if (head == NULL || stamps == NULL) {
        PyMem_Free(head);
        PyMem_Free(stamps);
        return -1;
    }
    memcpy(head, self->head_inline, sizeof(self->head_inline));
    memcpy(stamps, self->stamps_inline, sizeof(self->stamps_inline));
    self->head = head;
    self->stamps = stamps;
    return 0;
}

static int make_tail(Watch *self) {
    self->tail = PyMem_Malloc(TAIL_MAX * sizeof(PyObject *));
    return self->tail != NULL ? 0 : -1;
}

static void no_room(Watch *self) {
    PyErr_NoMemory();
    internal_error(self, where_keeping);
}

static PyObject *watch_iter(Watch *self) {
    if (self->chunks == NULL && self->inner != NULL) {
        self->chunks = PyObject_GetIter(self->inner);
        if (self->chunks == NULL) return NULL; /* the inner stream's own error */
    }
    Py_INCREF(self);
    return (PyObject *)self;
}

/* A head chunk (a stream's first few): kept with its arrival time. Out of line, so the
 * path every later chunk takes stays a few instructions long. */
static COLD void head_put(Watch *self, PyObject *chunk) {
    if (self->n_head == HEAD_INLINE && self->head == self->head_inline && grow_head(self) < 0) {
        self->looking = 0; /* the head ends here, unkept */
        no_room(self);
        return;
    }
    Py_INCREF(chunk);
    self->head[self->n_head] = chunk;
    self->stamps[self->n_head] = now();
    self->n_head++;
    if (self->n_head >= HEAD_MAX ||
        (PyBytes_Check(chunk) && PyBytes_GET_SIZE(chunk) >= CONTENT_EVENT_LEN &&
         memcmp(PyBytes_AS_STRING(chunk), CONTENT_EVENT, CONTENT_EVENT_LEN) == 0)) {
        self->looking = 0;
        if (make_tail(self) < 0) {
            no_room(self);
            return;
        }
        tail_put(self, chunk); /* the tail starts where the head ends */
    }
}

/* Each chunk: in situ the client's own work between two chunks evicts this code from the
 * instruction cache, so its size is what a chunk costs (cachegrind: bench/anthropic_instructions.py). */
static PyObject *watch_next(Watch *self) {
    PyObject *chunks = self->chunks;
    if (chunks == NULL) return NULL;
    PyObject *chunk = Py_TYPE(chunks)->tp_iternext(chunks);
    if (chunk == NULL) return NULL; /* the end, or the inner stream's own error */
    if (self->tail != NULL) {
        tail_put(self, chunk);
    } else if (self->looking) {
        head_put(self, chunk);
    }
    return chunk;
}

/* The first close: give the response its own body back, and defer the report with the
 * exception in flight (`in_flight`, borrowed, or the one being handled). */
static void watch_closed(Watch *self, PyObject *in_flight) {
    PyObject *response = self->response;
    if (response == NULL) return;
    self->response = NULL;
    PyObject *inner = self->inner;
    self->inner = NULL;
    Py_CLEAR(self->chunks);
    double closed_at = now();
    int failed = PyObject_SetAttr(response, str_stream, inner != NULL ? inner : Py_None) < 0;
    Py_DECREF(response);
    Py_XDECREF(inner);
    if (failed) {
        internal_error(self, where_closing);
        return;
    }
    PyObject *handled = NULL;
    if (in_flight == NULL) {
        handled = PyErr_GetHandledException();
        in_flight = handled != NULL ? handled : Py_None;
    }
    PyObject *at = PyFloat_FromDouble(closed_at);
    PyObject *job = at != NULL ? PyTuple_Pack(4, report_closed, (PyObject *)self, at, in_flight)
                               : NULL;
    Py_XDECREF(at);
    Py_XDECREF(handled);
    PyObject *got = job != NULL ? PyObject_CallOneArg(self->defer, job) : NULL;
    Py_XDECREF(job);
    if (got == NULL) {
        internal_error(self, where_closing);
        return;
    }
    Py_DECREF(got);
}

static PyObject *watch_close(Watch *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *result;
    if (self->inner != NULL) {
        PyObject *inner = self->inner;
        Py_INCREF(inner);
        result = PyObject_CallMethodNoArgs(inner, str_close);
        Py_DECREF(inner);
    } else {
        result = Py_NewRef(Py_None);
    }
    if (result != NULL) {
        watch_closed(self, NULL);
        return result;
    }
    /* try: inner.close() finally: closed(), with the close's own error in flight */
    PyObject *exc_type, *exc, *tb;
    PyErr_Fetch(&exc_type, &exc, &tb);
    PyErr_NormalizeException(&exc_type, &exc, &tb);
    watch_closed(self, exc != NULL ? exc : Py_None);
    PyErr_Restore(exc_type, exc, tb);
    return NULL;
}

/* -- read on the sender thread --------------------------------------------------------- */

static PyObject *get_head(Watch *self, void *Py_UNUSED(closure)) {
    PyObject *list = PyList_New(self->n_head);
    if (list == NULL) return NULL;
    for (int i = 0; i < self->n_head; i++) PyList_SET_ITEM(list, i, Py_NewRef(self->head[i]));
    return list;
}

static PyObject *get_stamps(Watch *self, void *Py_UNUSED(closure)) {
    PyObject *list = PyList_New(self->n_head);
    if (list == NULL) return NULL;
    for (int i = 0; i < self->n_head; i++) {
        PyObject *stamp = PyFloat_FromDouble(self->stamps[i]);
        if (stamp == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, stamp);
    }
    return list;
}

static PyObject *get_tail(Watch *self, void *Py_UNUSED(closure)) {
    PyObject *list = PyList_New(self->n_tail);
    if (list == NULL) return NULL;
    int first = self->n_tail < TAIL_MAX ? 0 : self->tail_next;
    for (int i = 0; i < self->n_tail; i++)
        PyList_SET_ITEM(list, i, Py_NewRef(self->tail[(first + i) % TAIL_MAX]));
    return list;
}

static PyGetSetDef watch_getset[] = {
    {"head", (getter)get_head, NULL, "the head chunks (a new list)", NULL},
    {"stamps", (getter)get_stamps, NULL, "when each head chunk arrived (a new list)", NULL},
    {"tail", (getter)get_tail, NULL, "the last chunks kept, oldest first (a new list)", NULL},
    {NULL},
};

static PyMemberDef watch_members[] = {
    {"_inner", T_OBJECT, offsetof(Watch, inner), READONLY, NULL},
    {"_response", T_OBJECT, offsetof(Watch, response), READONLY, NULL},
    {"info", T_OBJECT, offsetof(Watch, info), READONLY, NULL},
    {"call", T_OBJECT, offsetof(Watch, call), 0, NULL},
    {"first_content_at", T_OBJECT, offsetof(Watch, first_content_at), 0, NULL},
    {NULL},
};

static PyMethodDef watch_methods[] = {
    {"close", (PyCFunction)watch_close, METH_NOARGS, "close the body; report once"},
    {NULL},
};

static PyTypeObject WatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "producers.integrations._anthropic_fast.SyncWatch",
    .tp_basicsize = sizeof(Watch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C part of a synchronous stream's watch (subclassed in Python).",
    .tp_traverse = (traverseproc)watch_traverse,
    .tp_clear = (inquiry)watch_clear,
    .tp_dealloc = (destructor)watch_dealloc,
    .tp_iter = (getiterfunc)watch_iter,
    .tp_iternext = (iternextfunc)watch_next,
    .tp_methods = watch_methods,
    .tp_members = watch_members,
    .tp_getset = watch_getset,
    .tp_new = PyType_GenericNew,
};

/* Watch `response`'s body when it is a synchronous byte stream: 1 watched, 0 not, -1 error. */
static int watch_body(PyObject *response, PyObject *defer, PyObject *reporter, PyObject *started,
                      PyObject *body, PyObject *attribution, PyObject *call) {
    if (watch_class == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return -1;
    }
    PyObject *inner = PyObject_GetAttr(response, str_stream);
    if (inner == NULL) return -1;
    int is_sync = Py_TYPE(inner) == bound_stream_type ? 1 : PyObject_IsInstance(inner, sync_byte_stream);
    if (is_sync <= 0) {
        Py_DECREF(inner);
        return is_sync;
    }
    PyObject *asked = NULL;
    if (body != NULL && PyDict_CheckExact(body)) {
        asked = PyDict_GetItemWithError(body, str_model); /* borrowed */
        if (asked == NULL && PyErr_Occurred()) {
            Py_DECREF(inner);
            return -1;
        }
    }
    PyObject *headers_at = PyFloat_FromDouble(now());
    PyObject *info = headers_at != NULL
        ? PyTuple_Pack(5, reporter, started, asked != NULL ? asked : Py_None, attribution, headers_at)
        : NULL;
    Py_XDECREF(headers_at);
    Watch *self = info != NULL ? (Watch *)watch_class->tp_alloc(watch_class, 0) : NULL;
    if (self == NULL) {
        Py_DECREF(inner);
        Py_XDECREF(info);
        return -1;
    }
    self->inner = inner; /* (the reference taken above) */
    self->response = Py_NewRef(response);
    self->defer = Py_NewRef(defer);
    self->info = info;
    self->call = Py_NewRef(call);
    self->first_content_at = Py_NewRef(Py_None);
    self->looking = 1;
    self->head = self->head_inline;
    self->stamps = self->stamps_inline;
    if (PyObject_SetAttr(response, str_stream, (PyObject *)self) < 0) {
        Py_CLEAR(self->response);
        Py_DECREF(self);
        return -1;
    }
    PyObject *job = PyTuple_Pack(2, report_started, (PyObject *)self);
    PyObject *got = job != NULL ? PyObject_CallOneArg(defer, job) : NULL;
    Py_XDECREF(job);
    if (got == NULL) internal_error(self, where_watching);
    Py_XDECREF(got);
    Py_DECREF(self); /* the response holds it now */
    return 1;
}

/* watch(response, defer, reporter, started, body, attribution, call) -> bool: when the
 * response's body is a synchronous byte stream, put a watch (of the configured subclass)
 * between httpx and it and defer the stream's start report; False when it is not. */
static PyObject *watch(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "watch() takes 7 arguments");
        return NULL;
    }
    int watched = watch_body(args[0], args[1], args[2], args[3], args[4], args[5], args[6]);
    if (watched < 0) return NULL;
    return PyBool_FromLong(watched);
}

/* -- the wrapped synchronous `messages._post` ------------------------------------------ */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *post;         /* the client's own _post */
    PyObject *reporter;
    PyObject *defer;
    PyObject *returned;     /* reporter.returned: a plain answer's deferred report */
    PyObject *end_raised;   /* (reporter, kwargs, started, exc): a failed call (Python) */
    PyObject *end_returned; /* (reporter, kwargs, started, result): a retried call (Python) */
    PyObject *call_var;     /* the ContextVar of a call with failed attempts */
    PyObject *attribution_var;
    PyObject *message_type;
    PyObject *stream_type;
    PyObject *path;         /* "/v1/messages" */
} Post;

static int post_traverse(Post *self, visitproc visit, void *arg) {
    Py_VISIT(self->post);
    Py_VISIT(self->reporter);
    Py_VISIT(self->defer);
    Py_VISIT(self->returned);
    Py_VISIT(self->end_raised);
    Py_VISIT(self->end_returned);
    Py_VISIT(self->call_var);
    Py_VISIT(self->attribution_var);
    Py_VISIT(self->message_type);
    Py_VISIT(self->stream_type);
    Py_VISIT(self->path);
    return 0;
}

static int post_clear(Post *self) {
    Py_CLEAR(self->post);
    Py_CLEAR(self->reporter);
    Py_CLEAR(self->defer);
    Py_CLEAR(self->returned);
    Py_CLEAR(self->end_raised);
    Py_CLEAR(self->end_returned);
    Py_CLEAR(self->call_var);
    Py_CLEAR(self->attribution_var);
    Py_CLEAR(self->message_type);
    Py_CLEAR(self->stream_type);
    Py_CLEAR(self->path);
    return 0;
}

static void post_dealloc(Post *self) {
    PyObject_GC_UnTrack(self);
    post_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The keyword arguments of a call as a dict (the rare paths hand them to Python). */
static PyObject *keywords(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *kwargs = PyDict_New();
    if (kwargs == NULL || kwnames == NULL) return kwargs;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
        if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
            Py_DECREF(kwargs);
            return NULL;
        }
    }
    return kwargs;
}

static PyObject *keyword(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject *name) {
    if (kwnames == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++)
        if (PyTuple_GET_ITEM(kwnames, i) == name) return args[nargs + i]; /* (interned) */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++)
        if (PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, i), name) == 0) return args[nargs + i];
    return NULL;
}

/* A failure of ours while reading a result: counted, never raised into the caller (unless
 * it is not an Exception: an interrupt goes on, as it would from Python). */
static int reading_failed(Post *self, PyObject *where) {
    if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
    PyObject *exc_type, *exc, *tb;
    PyErr_Fetch(&exc_type, &exc, &tb);
    PyErr_NormalizeException(&exc_type, &exc, &tb);
    PyObject *got = PyObject_CallMethodObjArgs(
        self->reporter, str_internal_error, where, exc != NULL ? exc : Py_None, NULL);
    Py_XDECREF(got);
    PyErr_Clear();
    Py_XDECREF(exc_type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
    return 0;
}

/* After the client's _post returned `result`: 0, or -1 with an error set. */
static int post_returned(Post *self, PyObject *result, double started_at, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *call = NULL, *attribution = NULL, *started = NULL;
    int status = -1;
    if (PyContextVar_Get(self->call_var, Py_None, &call) < 0) return -1;
    PyTypeObject *kind = Py_TYPE(result);
    int plain = call == Py_None && (PyObject *)kind == self->message_type;
    int stream = call == Py_None && (PyObject *)kind == self->stream_type;
    Py_DECREF(call);
    started = PyFloat_FromDouble(started_at);
    if (started == NULL) return -1;
    if (plain || stream) {
        if (PyContextVar_Get(self->attribution_var, NULL, &attribution) < 0) goto done;
        if (attribution == NULL) attribution = Py_NewRef(Py_None);
    }
    if (plain) { /* answered at once: the rest deferred */
        PyObject *model = PyObject_GetAttr(result, str_model);
        PyObject *usage = model != NULL ? PyObject_GetAttr(result, str_usage) : NULL;
        PyObject *ended = usage != NULL ? PyFloat_FromDouble(now()) : NULL;
        PyObject *job = ended != NULL
            ? PyTuple_Pack(6, self->returned, model, usage, attribution, started, ended)
            : NULL;
        PyObject *got = job != NULL ? PyObject_CallOneArg(self->defer, job) : NULL;
        Py_XDECREF(model);
        Py_XDECREF(usage);
        Py_XDECREF(ended);
        Py_XDECREF(job);
        if (got == NULL) goto done;
        Py_DECREF(got);
    } else if (stream) {
        PyObject *body = keyword(args, nargs, kwnames, str_body);
        PyObject *response = PyObject_GetAttr(result, str_response);
        if (response == NULL) goto done;
        int watched = watch_body(response, self->defer, self->reporter, started, body,
                                 attribution, Py_None);
        Py_DECREF(response);
        if (watched < 0) goto done;
    } else { /* a retried call, another result type: Python */
        PyObject *kwargs = keywords(args, nargs, kwnames);
        PyObject *got = kwargs != NULL
            ? PyObject_CallFunctionObjArgs(self->end_returned, self->reporter, kwargs, started,
                                           result, NULL)
            : NULL;
        Py_XDECREF(kwargs);
        if (got == NULL) goto done;
        Py_DECREF(got);
    }
    status = 0;
done:
    Py_XDECREF(attribution);
    Py_DECREF(started);
    return status;
}

static PyObject *post_vectorcall(Post *self, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1 || !PyUnicode_Check(args[0]) ||
        (args[0] != self->path && PyUnicode_Compare(args[0], self->path) != 0))
        return PyObject_Vectorcall(self->post, args, nargsf, kwnames);
    PyObject *left = NULL; /* left by a request we did not wrap (beta messages) */
    if (PyContextVar_Get(self->call_var, Py_None, &left) < 0) return NULL;
    if (left != Py_None) {
        PyObject *token = PyContextVar_Set(self->call_var, Py_None);
        Py_XDECREF(token);
        if (token == NULL) {
            Py_DECREF(left);
            return NULL;
        }
    }
    Py_DECREF(left);
    double started_at = now();
    PyObject *result = PyObject_Vectorcall(self->post, args, nargsf, kwnames);
    if (result == NULL) { /* the client's own exception, re-raised untouched */
        PyObject *exc_type, *exc, *tb;
        PyErr_Fetch(&exc_type, &exc, &tb);
        PyErr_NormalizeException(&exc_type, &exc, &tb);
        if (exc != NULL && tb != NULL) PyException_SetTraceback(exc, tb);
        PyObject *kwargs = keywords(args, nargs, kwnames);
        PyObject *started = PyFloat_FromDouble(started_at);
        PyObject *got = kwargs != NULL && started != NULL
            ? PyObject_CallFunctionObjArgs(self->end_raised, self->reporter, kwargs, started,
                                           exc != NULL ? exc : Py_None, NULL)
            : NULL; /* (it reports its own failures) */
        Py_XDECREF(got);
        Py_XDECREF(kwargs);
        Py_XDECREF(started);
        PyErr_Clear();
        PyErr_Restore(exc_type, exc, tb);
        return NULL;
    }
    if (post_returned(self, result, started_at, args, nargs, kwnames) < 0 &&
        reading_failed(self, where_reading) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyMemberDef post_members[] = {
    {"__wrapped__", T_OBJECT, offsetof(Post, post), READONLY, "the client's own _post"},
    {NULL},
};

static PyTypeObject PostType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "producers.integrations._anthropic_fast.ObservedPost",
    .tp_basicsize = sizeof(Post),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The instrumented synchronous messages._post (see anthropic.py).",
    .tp_traverse = (traverseproc)post_traverse,
    .tp_clear = (inquiry)post_clear,
    .tp_dealloc = (destructor)post_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Post, vectorcall),
    .tp_members = post_members,
};

/* observe_post(post, reporter, defer, returned, end_raised, end_returned, call_var,
 *              attribution_var, message_type, stream_type, path) -> the wrapped _post */
static PyObject *observe_post(PyObject *Py_UNUSED(module), PyObject *const *args,
                              Py_ssize_t nargs) {
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "observe_post() takes 11 arguments");
        return NULL;
    }
    if (!PyUnicode_Check(args[10])) {
        PyErr_SetString(PyExc_TypeError, "observe_post(): the path is a str");
        return NULL;
    }
    Post *self = PyObject_GC_New(Post, &PostType);
    if (self == NULL) return NULL;
    self->vectorcall = (vectorcallfunc)post_vectorcall;
    PyObject **fields[] = {&self->post, &self->reporter, &self->defer, &self->returned,
                           &self->end_raised, &self->end_returned, &self->call_var,
                           &self->attribution_var, &self->message_type, &self->stream_type,
                           &self->path};
    for (int i = 0; i < 11; i++) *fields[i] = Py_NewRef(args[i]);
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* -- deferring a job: DeferredReports.add without a Python frame ------------------------ */

/* appender(jobs, wake_at, due) -> a callable taking one job: appends it to the deque `jobs`
 * and, once `wake_at` jobs wait, calls `due()` (which wakes the sender once). The same
 * steps as producers/deferred.py's DeferredReports.add; in situ each call of a Python
 * method costs about a microsecond, and a stream defers two jobs. */
typedef struct {
    PyObject_HEAD
    PyObject *jobs;
    PyObject *append; /* jobs.append */
    PyObject *due;
    Py_ssize_t wake_at;
    vectorcallfunc vectorcall;
} Appender;

static int appender_traverse(Appender *self, visitproc visit, void *arg) {
    Py_VISIT(self->jobs);
    Py_VISIT(self->append);
    Py_VISIT(self->due);
    return 0;
}

static int appender_clear(Appender *self) {
    Py_CLEAR(self->jobs);
    Py_CLEAR(self->append);
    Py_CLEAR(self->due);
    return 0;
}

static void appender_dealloc(Appender *self) {
    PyObject_GC_UnTrack(self);
    appender_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *appender_vectorcall(Appender *self, PyObject *const *args, size_t nargsf,
                                     PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "a deferral takes one job");
        return NULL;
    }
    PyObject *got = PyObject_CallOneArg(self->append, args[0]);
    if (got == NULL) return NULL;
    Py_DECREF(got);
    Py_ssize_t waiting = PyObject_Length(self->jobs);
    if (waiting < 0) return NULL;
    if (waiting >= self->wake_at) return PyObject_CallNoArgs(self->due);
    Py_RETURN_NONE;
}

static PyTypeObject AppenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "producers.integrations._anthropic_fast.Appender",
    .tp_basicsize = sizeof(Appender),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "DeferredReports.add in C (see appender()).",
    .tp_traverse = (traverseproc)appender_traverse,
    .tp_clear = (inquiry)appender_clear,
    .tp_dealloc = (destructor)appender_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Appender, vectorcall),
};

static PyObject *appender(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *jobs, *due;
    Py_ssize_t wake_at;
    if (!PyArg_ParseTuple(args, "OnO:appender", &jobs, &wake_at, &due)) return NULL;
    PyObject *append = PyObject_GetAttrString(jobs, "append");
    if (append == NULL) return NULL;
    Appender *self = PyObject_GC_New(Appender, &AppenderType);
    if (self == NULL) {
        Py_DECREF(append);
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)appender_vectorcall;
    self->jobs = Py_NewRef(jobs);
    self->append = append;
    self->due = Py_NewRef(due);
    self->wake_at = wake_at;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* configure(watch_class, sync_byte_stream, bound_stream_type, report_started, report_closed) */
static PyObject *configure(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *cls, *sync, *bound, *started, *closed;
    if (!PyArg_ParseTuple(args, "OOOOO:configure", &cls, &sync, &bound, &started, &closed))
        return NULL;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &WatchType) ||
        !PyType_Check(bound)) {
        PyErr_SetString(PyExc_TypeError, "configure() needs a subclass of SyncWatch and a type");
        return NULL;
    }
    Py_XSETREF(watch_class, (PyTypeObject *)Py_NewRef(cls));
    Py_XSETREF(sync_byte_stream, Py_NewRef(sync));
    Py_XSETREF(bound_stream_type, (PyTypeObject *)Py_NewRef(bound));
    Py_XSETREF(report_started, Py_NewRef(started));
    Py_XSETREF(report_closed, Py_NewRef(closed));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"watch", (PyCFunction)(void (*)(void))watch, METH_FASTCALL, "install a watch"},
    {"observe_post", (PyCFunction)(void (*)(void))observe_post, METH_FASTCALL,
     "wrap a synchronous messages._post"},
    {"appender", appender, METH_VARARGS, "appender(jobs, wake_at, due): a C DeferredReports.add"},
    {"configure", configure, METH_VARARGS, "configure(watch_class, sync_byte_stream, bound_stream_type, report_started, report_closed)"},
    {NULL},
};

static struct PyModuleDef module_def = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_anthropic_fast",
    .m_doc = "The per-chunk part of a synchronous stream's watch (anthropic_streams).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__anthropic_fast(void) {
    str_stream = PyUnicode_InternFromString("stream");
    str_close = PyUnicode_InternFromString("close");
    str_model = PyUnicode_InternFromString("model");
    str_usage = PyUnicode_InternFromString("usage");
    str_body = PyUnicode_InternFromString("body");
    str_response = PyUnicode_InternFromString("response");
    where_reading = PyUnicode_InternFromString("reading a result");
    str_internal_error = PyUnicode_InternFromString("internal_error");
    where_closing = PyUnicode_InternFromString("closing a stream");
    where_watching = PyUnicode_InternFromString("watching a stream");
    where_keeping = PyUnicode_InternFromString("keeping a stream's chunks");
    if (!str_stream || !str_model || !str_usage || !str_body || !str_response ||
        !where_reading || !str_close || !str_internal_error || !where_closing || !where_watching || !where_keeping)
        return NULL;
    if (PyType_Ready(&WatchType) < 0 || PyType_Ready(&PostType) < 0 ||
        PyType_Ready(&AppenderType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    if (PyModule_AddObjectRef(module, "SyncWatch", (PyObject *)&WatchType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    PyModule_AddIntConstant(module, "HEAD_MAX", HEAD_MAX);
    PyModule_AddIntConstant(module, "TAIL_MAX", TAIL_MAX);
    return module;
}
