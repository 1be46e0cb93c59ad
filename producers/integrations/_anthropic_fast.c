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
#if PY_VERSION_HEX < 0x030D0000 /* (its name before 3.13) */
#define PyObject_GetOptionalAttr _PyObject_LookupAttr
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
static PyTypeObject *async_watch_class = NULL;
static PyObject *sync_byte_stream = NULL;
static PyObject *async_byte_stream = NULL;
static PyTypeObject *bound_stream_type = NULL; /* httpx's own bodies: checked first */
static PyTypeObject *bound_async_stream_type = NULL;
static PyObject *str_stream = NULL;
static PyObject *str_model = NULL;
static PyObject *str_usage = NULL;
static PyObject *str_body = NULL;
static PyObject *str_response = NULL;
static PyObject *where_reading = NULL;
static PyObject *str_close = NULL;
static PyObject *str_aclose = NULL;
static PyObject *str_throw = NULL;
static PyObject *str_anext = NULL;
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
static inline void keep_chunk(Watch *self, PyObject *chunk) {
    if (self->tail != NULL) {
        tail_put(self, chunk);
    } else if (self->looking) {
        head_put(self, chunk);
    }
}

static PyObject *watch_next(Watch *self) {
    PyObject *chunks = self->chunks;
    if (chunks == NULL) return NULL;
    PyObject *chunk = Py_TYPE(chunks)->tp_iternext(chunks);
    if (chunk == NULL) return NULL; /* the end, or the inner stream's own error */
    keep_chunk(self, chunk);
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

/* Watch `response`'s body when it is a byte stream (sync or async): 1 watched, 0 not, -1 error. */
static int watch_body(PyObject *response, PyObject *defer, PyObject *reporter, PyObject *started,
                      PyObject *body, PyObject *attribution, PyObject *call) {
    if (watch_class == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return -1;
    }
    PyObject *inner = PyObject_GetAttr(response, str_stream);
    if (inner == NULL) return -1;
    PyTypeObject *cls = watch_class;
    int is_byte_stream = Py_TYPE(inner) == bound_stream_type ? 1 : PyObject_IsInstance(inner, sync_byte_stream);
    if (is_byte_stream == 0) {
        cls = async_watch_class;
        is_byte_stream = Py_TYPE(inner) == bound_async_stream_type
            ? 1 : PyObject_IsInstance(inner, async_byte_stream);
    }
    if (is_byte_stream <= 0) {
        Py_DECREF(inner);
        return is_byte_stream;
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
    Watch *self = info != NULL ? (Watch *)cls->tp_alloc(cls, 0) : NULL;
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
 * response's body is a byte stream, put a watch (of the configured subclass)
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

/* -- the wrapped `messages._post` ------------------------------------------------------- */

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

/* The call is to the Messages API (the path its first argument names). */
static inline int is_messages_call(Post *self, PyObject *const *args, Py_ssize_t nargs) {
    return nargs >= 1 && PyUnicode_Check(args[0]) &&
           (args[0] == self->path || PyUnicode_Compare(args[0], self->path) == 0);
}

/* A call's state left in the context by a request we did not wrap (beta messages): cleared. */
static int clear_left_call(Post *self) {
    PyObject *left = NULL;
    if (PyContextVar_Get(self->call_var, Py_None, &left) < 0) return -1;
    int status = 0;
    if (left != Py_None) {
        PyObject *token = PyContextVar_Set(self->call_var, Py_None);
        status = token != NULL ? 0 : -1;
        Py_XDECREF(token);
    }
    Py_DECREF(left);
    return status;
}

/* The client's _post raised (the error is set): reported, then re-raised untouched. */
static void post_raised(Post *self, double started_at, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames) {
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
}

/* The client's _post returned `result` (a new reference): it, or NULL when reading it
 * failed with an error that is not an Exception (then it goes on, as from Python). */
static PyObject *post_result(Post *self, PyObject *result, double started_at,
                             PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    if (post_returned(self, result, started_at, args, nargs, kwnames) < 0 &&
        reading_failed(self, where_reading) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyObject *post_vectorcall(Post *self, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!is_messages_call(self, args, nargs))
        return PyObject_Vectorcall(self->post, args, nargsf, kwnames);
    if (clear_left_call(self) < 0) return NULL;
    double started_at = now();
    PyObject *result = PyObject_Vectorcall(self->post, args, nargsf, kwnames);
    if (result == NULL) { /* the client's own exception, re-raised untouched */
        post_raised(self, started_at, args, nargs, kwnames);
        return NULL;
    }
    return post_result(self, result, started_at, args, nargs, kwnames);
}

static PyObject *new_post_step(Post *post, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames); /* (below: an awaitable, like the rest) */

/* The asynchronous _post: an awaitable of ours (a Step) over the client's coroutine, made
 * when first awaited, as an `async def` wrapper would; other paths get the client's own. */
static PyObject *async_post_vectorcall(Post *self, PyObject *const *args, size_t nargsf,
                                       PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!is_messages_call(self, args, nargs))
        return PyObject_Vectorcall(self->post, args, nargsf, kwnames);
    return new_post_step(self, args, nargs, kwnames);
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
    .tp_doc = "The instrumented messages._post (see anthropic.py).",
    .tp_traverse = (traverseproc)post_traverse,
    .tp_clear = (inquiry)post_clear,
    .tp_dealloc = (destructor)post_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Post, vectorcall),
    .tp_members = post_members,
};

/* observe_post(post, reporter, defer, returned, end_raised, end_returned, call_var,
 *              attribution_var, message_type, stream_type, path, asynchronous)
 * -> the wrapped _post (for an AsyncAnthropic client's: stream_type is AsyncStream) */
static PyObject *observe_post(PyObject *Py_UNUSED(module), PyObject *const *args,
                              Py_ssize_t nargs) {
    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError, "observe_post() takes 12 arguments");
        return NULL;
    }
    if (!PyUnicode_Check(args[10])) {
        PyErr_SetString(PyExc_TypeError, "observe_post(): the path is a str");
        return NULL;
    }
    int asynchronous = PyObject_IsTrue(args[11]);
    if (asynchronous < 0) return NULL;
    Post *self = PyObject_GC_New(Post, &PostType);
    if (self == NULL) return NULL;
    self->vectorcall = (vectorcallfunc)(asynchronous ? async_post_vectorcall : post_vectorcall);
    PyObject **fields[] = {&self->post, &self->reporter, &self->defer, &self->returned,
                           &self->end_raised, &self->end_returned, &self->call_var,
                           &self->attribution_var, &self->message_type, &self->stream_type,
                           &self->path};
    for (int i = 0; i < 11; i++) *fields[i] = Py_NewRef(args[i]);
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* -- awaitables: asynchronous bodies and the asynchronous _post ------------------------ *
 *
 * In Python, the watch of an asynchronous body is an async generator and the wrapped _post
 * a coroutine: each is one more frame resumed at every chunk and every suspension of the
 * client's own awaitables beneath it. Here each is a Step: an awaitable in C over the
 * client's (or httpx's) own awaitable that forwards send(), throw() and close() to it
 * untouched (so a cancellation reaches the read exactly as without us) and, when it ends,
 * does what the Python code after its `await` would:
 *   READ  one __anext__() of an AsyncWatch: keeps the chunk read;
 *   CLOSE an AsyncWatch's aclose(): the body's own aclose(), then the report, whether it
 *         returned or raised (a `finally`);
 *   POST  the asynchronous _post: the client's coroutine (made when first awaited, as an
 *         `async def` wrapper makes it), then the same steps as the synchronous one.
 * A CLOSE or POST step thrown into or closed before it started runs nothing, and one
 * dropped while awaited is closed, as a coroutine is. */

enum { STEP_READ, STEP_CLOSE, STEP_POST };

typedef struct {
    PyObject_HEAD
    PyObject *owner;    /* the Watch, or the Post */
    PyObject *awaiting; /* what is awaited: an iterator; NULL before it started or after */
    PyObject *args;     /* POST: the call's arguments, positional then keyword values */
    PyObject *kwnames;  /* POST: or NULL */
    double started_at;  /* POST */
    char kind;
    char started;
    char done;
} Step;

static PyTypeObject StepType;

static int step_traverse(Step *self, visitproc visit, void *arg) {
    Py_VISIT(self->owner);
    Py_VISIT(self->awaiting);
    Py_VISIT(self->args);
    Py_VISIT(self->kwnames);
    return 0;
}

static int step_clear(Step *self) {
    Py_CLEAR(self->owner);
    Py_CLEAR(self->awaiting);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kwnames);
    return 0;
}

/* What awaiting `awaitable` iterates (as the interpreter's own `await` finds it). */
static PyObject *awaited_iter(PyObject *awaitable) {
    if (PyCoro_CheckExact(awaitable)) return Py_NewRef(awaitable);
    PyAsyncMethods *as_async = Py_TYPE(awaitable)->tp_as_async;
    if (as_async == NULL || as_async->am_await == NULL) {
        PyErr_Format(PyExc_TypeError, "'%.100s' object can't be awaited",
                     Py_TYPE(awaitable)->tp_name);
        return NULL;
    }
    PyObject *iter = as_async->am_await(awaitable);
    if (iter != NULL && (!PyIter_Check(iter) || PyCoro_CheckExact(iter))) {
        PyErr_Format(PyExc_TypeError, "__await__() returned a non-iterator of type '%.100s'",
                     Py_TYPE(iter)->tp_name);
        Py_CLEAR(iter);
    }
    return iter;
}

/* (`awaiting`: a reference handed over, or NULL) */
static Step *new_step(char kind, PyObject *owner, PyObject *awaiting) {
    Step *self = PyObject_GC_New(Step, &StepType);
    if (self == NULL) {
        Py_XDECREF(awaiting);
        return NULL;
    }
    self->owner = Py_NewRef(owner);
    self->awaiting = awaiting;
    self->args = self->kwnames = NULL;
    self->started_at = 0.0;
    self->kind = kind;
    self->started = self->done = 0;
    PyObject_GC_Track(self);
    return self;
}

static PyObject *new_post_step(Post *post, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
    Py_ssize_t n = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *all = PyTuple_New(n);
    if (all == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(all, i, Py_NewRef(args[i]));
    Step *self = new_step(STEP_POST, (PyObject *)post, NULL);
    if (self == NULL) {
        Py_DECREF(all);
        return NULL;
    }
    self->args = all;
    self->kwnames = Py_XNewRef(kwnames);
    return (PyObject *)self;
}

static inline Py_ssize_t post_nargs(Step *self) {
    return PyTuple_GET_SIZE(self->args) - (self->kwnames != NULL ? PyTuple_GET_SIZE(self->kwnames) : 0);
}

/* The first send: what a CLOSE or POST step awaits is made now. 0, or -1 with an error set
 * (raised where the Python code's `await` is: step_ended() sees it). */
static int step_begin(Step *self) {
    self->started = 1;
    if (self->kind == STEP_CLOSE) {
        Watch *watch = (Watch *)self->owner;
        if (watch->inner == NULL) return 0; /* closed already: nothing to await */
        PyObject *inner = Py_NewRef(watch->inner);
        PyObject *closing = PyObject_CallMethodNoArgs(inner, str_aclose);
        Py_DECREF(inner);
        self->awaiting = closing != NULL ? awaited_iter(closing) : NULL;
        Py_XDECREF(closing);
        return self->awaiting != NULL ? 0 : -1;
    }
    if (self->kind == STEP_POST) {
        Post *post = (Post *)self->owner;
        self->started_at = now();
        if (clear_left_call(post) < 0) return -1;
        PyObject *coro = PyObject_Vectorcall(post->post, &PyTuple_GET_ITEM(self->args, 0),
                                             post_nargs(self), self->kwnames);
        self->awaiting = coro != NULL ? awaited_iter(coro) : NULL;
        Py_XDECREF(coro);
        return self->awaiting != NULL ? 0 : -1;
    }
    return 0;
}

/* What is awaited ended: PYGEN_RETURN with `*value` (a reference), or PYGEN_ERROR with an
 * error set. Does the step's work after its `await`; returns the outcome to hand on (a
 * POST's reading may turn it into an error that is not an Exception, as Python would). */
static PySendResult step_ended(Step *self, PySendResult ended, PyObject **value) {
    self->done = 1;
    Py_CLEAR(self->awaiting);
    if (self->kind == STEP_READ) {
        if (ended == PYGEN_RETURN) keep_chunk((Watch *)self->owner, *value);
        return ended; /* (an error, StopAsyncIteration included, is the body's own) */
    }
    if (self->kind == STEP_POST) {
        Post *post = (Post *)self->owner;
        PyObject *const *args = &PyTuple_GET_ITEM(self->args, 0);
        Py_ssize_t nargs = post_nargs(self);
        if (ended == PYGEN_ERROR) {
            post_raised(post, self->started_at, args, nargs, self->kwnames);
            return ended;
        }
        *value = post_result(post, *value, self->started_at, args, nargs, self->kwnames);
        return *value != NULL ? ended : PYGEN_ERROR;
    }
    if (ended == PYGEN_RETURN) { /* STEP_CLOSE: try: await inner.aclose() finally: closed() */
        watch_closed((Watch *)self->owner, NULL);
        return ended;
    }
    PyObject *exc_type, *exc, *tb;
    PyErr_Fetch(&exc_type, &exc, &tb);
    PyErr_NormalizeException(&exc_type, &exc, &tb);
    if (exc != NULL && tb != NULL) PyException_SetTraceback(exc, tb);
    watch_closed((Watch *)self->owner, exc != NULL ? exc : Py_None);
    PyErr_Restore(exc_type, exc, tb);
    return ended;
}

static PySendResult step_send(Step *self, PyObject *arg, PyObject **result) {
    *result = NULL;
    if (self->done) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited step");
        return PYGEN_ERROR;
    }
    PySendResult sent;
    if (!self->started && step_begin(self) < 0) {
        sent = PYGEN_ERROR;
    } else if (self->awaiting == NULL) { /* aclose() of a body closed already */
        *result = Py_NewRef(Py_None);
        sent = PYGEN_RETURN;
    } else {
        sent = PyIter_Send(self->awaiting, arg, result);
        if (sent == PYGEN_NEXT) return sent; /* suspended: what it yields goes up as it is */
    }
    return step_ended(self, sent, result);
}

/* An outcome as an iterator gives it: the value yielded, or NULL with StopIteration(value)
 * (or the error) set. */
static PyObject *stop_with(PySendResult sent, PyObject *result) {
    if (sent == PYGEN_NEXT) return result;
    if (sent == PYGEN_RETURN) {
        if (result == Py_None) {
            PyErr_SetNone(PyExc_StopIteration);
        } else {
            PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
            if (stop != NULL) {
                PyErr_SetObject(PyExc_StopIteration, stop);
                Py_DECREF(stop);
            }
        }
        Py_DECREF(result);
    }
    return NULL;
}

static PyObject *step_next(Step *self) {
    PyObject *result = NULL;
    PySendResult sent = step_send(self, Py_None, &result);
    return stop_with(sent, result);
}

static PyObject *step_send_method(Step *self, PyObject *arg) {
    PyObject *result = NULL;
    PySendResult sent = step_send(self, arg, &result);
    return stop_with(sent, result);
}

/* The exception throw() was given, raised here (as by a generator with nothing to
 * delegate it to). */
static void raise_thrown(PyObject *const *args, Py_ssize_t nargs) {
    PyObject *typ = args[0], *val = nargs > 1 ? args[1] : Py_None;
    if (PyExceptionInstance_Check(typ)) {
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    } else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, val);
    } else {
        PyErr_SetString(PyExc_TypeError,
                        "exceptions must be classes or instances deriving from BaseException");
    }
}

/* throw(typ[, val[, tb]]): into what is awaited, as `await` in a coroutine does. */
static PyObject *step_throw(Step *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw() takes 1 to 3 arguments");
        return NULL;
    }
    if (self->done || (!self->started && self->kind != STEP_READ)) {
        self->done = 1; /* finished, or never started: nothing runs */
        Py_CLEAR(self->awaiting);
        raise_thrown(args, nargs);
        return NULL;
    }
    self->started = 1;
    PyObject *throw = NULL;
    if (self->awaiting != NULL &&
        PyObject_GetOptionalAttr(self->awaiting, str_throw, &throw) < 0) {
        step_ended(self, PYGEN_ERROR, NULL);
        return NULL;
    }
    if (throw == NULL) {
        raise_thrown(args, nargs);
        step_ended(self, PYGEN_ERROR, NULL);
        return NULL;
    }
    PyObject *got = PyObject_Vectorcall(throw, args, nargs, NULL);
    Py_DECREF(throw);
    if (got != NULL) return got; /* it yielded: suspended again */
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        step_ended(self, PYGEN_ERROR, NULL);
        return NULL;
    }
    PyObject *exc_type, *exc, *tb;
    PyErr_Fetch(&exc_type, &exc, &tb);
    PyErr_NormalizeException(&exc_type, &exc, &tb);
    PyObject *value = exc != NULL ? PyObject_GetAttrString(exc, "value") : Py_NewRef(Py_None);
    Py_XDECREF(exc_type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
    if (value == NULL) {
        step_ended(self, PYGEN_ERROR, NULL);
        return NULL;
    }
    PySendResult ended = step_ended(self, PYGEN_RETURN, &value);
    return stop_with(ended, value);
}

/* close(): what is awaited is closed; then, as a coroutine's GeneratorExit would, the step's
 * error path runs (a POST reports it, a CLOSE reports the stream). */
static PyObject *step_close(Step *self, PyObject *Py_UNUSED(ignored)) {
    if (self->done) Py_RETURN_NONE;
    if (!self->started && self->kind != STEP_READ) {
        self->done = 1;
        Py_RETURN_NONE;
    }
    PyObject *close = NULL;
    if (self->awaiting != NULL &&
        PyObject_GetOptionalAttr(self->awaiting, str_close, &close) < 0) {
        step_ended(self, PYGEN_ERROR, NULL);
        return NULL;
    }
    PyObject *got = close != NULL ? PyObject_CallNoArgs(close) : Py_NewRef(Py_None);
    Py_XDECREF(close);
    if (got == NULL) {
        step_ended(self, PYGEN_ERROR, NULL);
        return NULL;
    }
    Py_DECREF(got);
    PyErr_SetNone(PyExc_GeneratorExit);
    step_ended(self, PYGEN_ERROR, NULL);
    PyErr_Clear();
    Py_RETURN_NONE;
}

/* A CLOSE or POST step dropped while awaited is closed, as a coroutine's finalizer does. */
static void step_finalize(Step *self) {
    if (self->kind == STEP_READ || !self->started || self->done) return;
    PyObject *exc_type, *exc, *tb;
    PyErr_Fetch(&exc_type, &exc, &tb);
    PyObject *got = step_close(self, NULL);
    if (got == NULL) PyErr_WriteUnraisable((PyObject *)self);
    Py_XDECREF(got);
    PyErr_Restore(exc_type, exc, tb);
}

static void step_dealloc(Step *self) {
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) return; /* resurrected */
    PyObject_GC_UnTrack(self);
    step_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *step_await(Step *self) {
    return Py_NewRef(self);
}

static PyAsyncMethods step_as_async = {
    .am_await = (unaryfunc)step_await,
    .am_send = (sendfunc)step_send,
};

static PyMethodDef step_methods[] = {
    {"send", (PyCFunction)step_send_method, METH_O, "send a value into what is awaited"},
    {"throw", (PyCFunction)(void (*)(void))step_throw, METH_FASTCALL,
     "throw an exception into what is awaited"},
    {"close", (PyCFunction)step_close, METH_NOARGS, "close what is awaited"},
    {NULL},
};

static PyTypeObject StepType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "producers.integrations._anthropic_fast.Step",
    .tp_basicsize = sizeof(Step),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An awaited read or close of an asynchronous body, or an awaited _post.",
    .tp_traverse = (traverseproc)step_traverse,
    .tp_clear = (inquiry)step_clear,
    .tp_dealloc = (destructor)step_dealloc,
    .tp_finalize = (destructor)step_finalize,
    .tp_as_async = &step_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)step_next,
    .tp_methods = step_methods,
};

static PyObject *async_watch_aiter(Watch *self) {
    if (self->chunks == NULL && self->inner != NULL) {
        PyAsyncMethods *as_async = Py_TYPE(self->inner)->tp_as_async;
        self->chunks = as_async != NULL && as_async->am_aiter != NULL
            ? as_async->am_aiter(self->inner)
            : PyObject_CallMethod(self->inner, "__aiter__", NULL);
        if (self->chunks == NULL) return NULL; /* the inner stream's own error */
    }
    return Py_NewRef(self);
}

static PyObject *async_watch_anext(Watch *self) {
    PyObject *chunks = self->chunks;
    if (chunks == NULL) {
        PyErr_SetNone(PyExc_StopAsyncIteration);
        return NULL;
    }
    PyAsyncMethods *as_async = Py_TYPE(chunks)->tp_as_async;
    PyObject *next = as_async != NULL && as_async->am_anext != NULL
        ? as_async->am_anext(chunks)
        : PyObject_CallMethodNoArgs(chunks, str_anext);
    if (next == NULL) return NULL;
    PyObject *awaiting = awaited_iter(next);
    Py_DECREF(next);
    return awaiting != NULL ? (PyObject *)new_step(STEP_READ, (PyObject *)self, awaiting) : NULL;
}

static PyObject *async_watch_aclose(Watch *self, PyObject *Py_UNUSED(ignored)) {
    return (PyObject *)new_step(STEP_CLOSE, (PyObject *)self, NULL);
}

static PyAsyncMethods async_watch_as_async = {
    .am_aiter = (unaryfunc)async_watch_aiter,
    .am_anext = (unaryfunc)async_watch_anext,
};

static PyMethodDef async_watch_methods[] = {
    {"aclose", (PyCFunction)async_watch_aclose, METH_NOARGS,
     "close the body (awaitable); report once"},
    {NULL},
};

static PyTypeObject AsyncWatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "producers.integrations._anthropic_fast.AsyncWatch",
    .tp_basicsize = sizeof(Watch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C part of an asynchronous stream's watch (subclassed in Python).",
    .tp_traverse = (traverseproc)watch_traverse,
    .tp_clear = (inquiry)watch_clear,
    .tp_dealloc = (destructor)watch_dealloc,
    .tp_as_async = &async_watch_as_async,
    .tp_methods = async_watch_methods,
    .tp_members = watch_members,
    .tp_getset = watch_getset,
    .tp_new = PyType_GenericNew,
};

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

/* configure(watch_class, async_watch_class, sync_byte_stream, async_byte_stream,
 *           bound_stream_type, bound_async_stream_type, report_started, report_closed) */
static PyObject *configure(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *cls, *async_cls, *sync, *async, *bound, *bound_async, *started, *closed;
    if (!PyArg_ParseTuple(args, "OOOOOOOO:configure", &cls, &async_cls, &sync, &async, &bound,
                          &bound_async, &started, &closed))
        return NULL;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &WatchType) ||
        !PyType_Check(async_cls) || !PyType_IsSubtype((PyTypeObject *)async_cls, &AsyncWatchType) ||
        !PyType_Check(bound) || !PyType_Check(bound_async)) {
        PyErr_SetString(PyExc_TypeError,
                        "configure() needs subclasses of SyncWatch and AsyncWatch, and types");
        return NULL;
    }
    Py_XSETREF(watch_class, (PyTypeObject *)Py_NewRef(cls));
    Py_XSETREF(async_watch_class, (PyTypeObject *)Py_NewRef(async_cls));
    Py_XSETREF(sync_byte_stream, Py_NewRef(sync));
    Py_XSETREF(async_byte_stream, Py_NewRef(async));
    Py_XSETREF(bound_stream_type, (PyTypeObject *)Py_NewRef(bound));
    Py_XSETREF(bound_async_stream_type, (PyTypeObject *)Py_NewRef(bound_async));
    Py_XSETREF(report_started, Py_NewRef(started));
    Py_XSETREF(report_closed, Py_NewRef(closed));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"watch", (PyCFunction)(void (*)(void))watch, METH_FASTCALL, "install a watch"},
    {"observe_post", (PyCFunction)(void (*)(void))observe_post, METH_FASTCALL,
     "wrap a synchronous messages._post"},
    {"appender", appender, METH_VARARGS, "appender(jobs, wake_at, due): a C DeferredReports.add"},
    {"configure", configure, METH_VARARGS,
     "configure(watch_class, async_watch_class, sync_byte_stream, async_byte_stream, "
     "bound_stream_type, bound_async_stream_type, report_started, report_closed)"},
    {NULL},
};

static struct PyModuleDef module_def = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_anthropic_fast",
    .m_doc = "The caller's-thread paths of the anthropic integration (anthropic_streams).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__anthropic_fast(void) {
    str_stream = PyUnicode_InternFromString("stream");
    str_close = PyUnicode_InternFromString("close");
    str_aclose = PyUnicode_InternFromString("aclose");
    str_throw = PyUnicode_InternFromString("throw");
    str_anext = PyUnicode_InternFromString("__anext__");
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
        !where_reading || !str_close || !str_aclose || !str_throw || !str_anext || !str_internal_error || !where_closing || !where_watching || !where_keeping)
        return NULL;
    if (PyType_Ready(&WatchType) < 0 || PyType_Ready(&AsyncWatchType) < 0 ||
        PyType_Ready(&StepType) < 0 || PyType_Ready(&PostType) < 0 ||
        PyType_Ready(&AppenderType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    if (PyModule_AddObjectRef(module, "SyncWatch", (PyObject *)&WatchType) < 0 ||
        PyModule_AddObjectRef(module, "AsyncWatch", (PyObject *)&AsyncWatchType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    PyModule_AddIntConstant(module, "HEAD_MAX", HEAD_MAX);
    PyModule_AddIntConstant(module, "TAIL_MAX", TAIL_MAX);
    return module;
}
