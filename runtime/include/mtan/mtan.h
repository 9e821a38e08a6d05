/* mtan: an int8 / float32 runtime for multi-task attention networks.
 *
 * The caller owns all memory: the model bytes and one arena. The runtime never
 * calls malloc or throws. A model file is untrusted: mtan_load verifies it
 * completely before using it, and every failure is a status with a message.
 *
 *   mtan_init();                                         // once per process
 *   mtan_options opt = mtan_options_default();            // max_batch from file
 *   size_t need = 0;
 *   if (mtan_arena_size(bytes, n, &opt, &need) != MTAN_OK) fail(mtan_last_error());
 *   void* arena = big_enough_static_buffer;               // >= need bytes
 *   mtan_model* m = NULL;
 *   if (mtan_load(bytes, n, &opt, arena, need, &m) != MTAN_OK) fail(mtan_last_error());
 *   int32_t click; mtan_task_find(m, "click", &click);
 *   float p[1];                                           // one row, one output
 *   mtan_status s = mtan_run(m, features, 1, click, p, 1, NULL);
 *   mtan_unload(m);                                       // then reuse the arena
 *
 * Threads: calls on different models may run concurrently. mtan_load and
 * mtan_unload take a process-wide lock. One model must not be run from two
 * threads at once (its activations live in its arena).
 */
#ifndef MTAN_MTAN_H_
#define MTAN_MTAN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTAN_VERSION_MAJOR 1
#define MTAN_VERSION_MINOR 0

/* Pass as `task` to run every task. */
#define MTAN_ALL_TASKS (-1)

/* Alignment the model bytes must have (weights are read in place). */
#define MTAN_MODEL_ALIGNMENT 16

/* Documented limits of a model file; a file beyond them fails with
 * MTAN_ERROR_LIMIT. */
#define MTAN_MAX_FILE_BYTES (256u * 1024u * 1024u)
#define MTAN_MAX_TENSORS 4096
#define MTAN_MAX_OPERATORS 4096
#define MTAN_MAX_TASKS 64
#define MTAN_MAX_INPUTS 65536
#define MTAN_MAX_DIM 1048576
#define MTAN_MAX_RANK 4
#define MTAN_MAX_BATCH 65536
#define MTAN_MAX_GOLDEN_CASES 64

typedef enum mtan_status {
  MTAN_OK = 0,
  MTAN_ERROR_INVALID_ARGUMENT = 1,  /* null pointer, misaligned data, bad option */
  MTAN_ERROR_NOT_INITIALIZED = 2,   /* mtan_init was not called or failed */
  MTAN_ERROR_TRUNCATED = 3,         /* file shorter than its header/footer says */
  MTAN_ERROR_BAD_IDENTIFIER = 4,    /* not an .mtan file */
  MTAN_ERROR_CHECKSUM = 5,          /* content does not match its checksum: corrupted */
  MTAN_ERROR_VERSION = 6,           /* format major version newer than this runtime */
  MTAN_ERROR_MALFORMED = 7,         /* FlatBuffers verifier rejected the file */
  MTAN_ERROR_LIMIT = 8,             /* beyond a documented MTAN_MAX_* limit */
  MTAN_ERROR_INDEX = 9,             /* a tensor, buffer or operator index out of range */
  MTAN_ERROR_OPERATOR = 10,         /* wrong arity, dtype or activation for an operator */
  MTAN_ERROR_SHAPE = 11,            /* bad, overflowing or mismatched shape */
  MTAN_ERROR_BUFFER = 12,           /* buffer missing, not the size of its tensor, or a
                                       NaN / infinite float weight */
  MTAN_ERROR_QUANTIZATION = 13,     /* scale not finite and positive, zero point out of
                                       range, or an int8 layer whose |bias| + 256 * sum |w|
                                       exceeds INT32_MAX (its accumulator could wrap) */
  MTAN_ERROR_GRAPH = 14,            /* cycle, out of order, or tensor defined twice */
  MTAN_ERROR_TASK = 15,             /* task without a valid output or plan */
  MTAN_ERROR_MEMORY_PLAN = 16,      /* live tensors share bytes, or plan out of bounds */
  MTAN_ERROR_ARENA_TOO_SMALL = 17,  /* the message states the required size */
  MTAN_ERROR_BATCH = 18,            /* batch 0 or above the loaded maximum */
  MTAN_ERROR_INPUT_NOT_FINITE = 19, /* a NaN or infinite feature value */
  MTAN_ERROR_OUTPUT_TOO_SMALL = 20, /* output buffer smaller than the result */
  MTAN_ERROR_UNSUPPORTED = 21,      /* valid file this build or backend cannot run */
  MTAN_ERROR_BACKEND = 22,          /* XNNPACK failed */
  MTAN_ERROR_SELF_TEST = 23,        /* a golden case did not reproduce */
  MTAN_ERROR_NO_GOLDEN_CASES = 24   /* self-test asked of a model that has none */
} mtan_status;

typedef enum mtan_backend {
  MTAN_BACKEND_DEFAULT = 0,   /* XNNPACK where built with it, else reference */
  MTAN_BACKEND_XNNPACK = 1,
  MTAN_BACKEND_REFERENCE = 2  /* portable scalar kernels */
} mtan_backend;

typedef enum mtan_task_kind {
  MTAN_TASK_BINARY = 0,      /* output: 1 probability */
  MTAN_TASK_MULTICLASS = 1,  /* output: one probability per class */
  MTAN_TASK_REGRESSION = 2   /* output: 1 value, in the label's units */
} mtan_task_kind;

typedef struct mtan_options {
  uint32_t max_batch;  /* rows per mtan_run; 0 = the maximum stored in the file */
  uint32_t backend;    /* an mtan_backend */
} mtan_options;

typedef struct mtan_task_info {
  const char* name;         /* points into the model bytes */
  uint32_t kind;            /* an mtan_task_kind */
  uint32_t output_size;     /* floats per row this task returns */
  uint32_t output_offset;   /* where its values start in an all-tasks row */
  uint32_t operator_count;  /* operators its plan runs */
} mtan_task_info;

typedef struct mtan_model mtan_model;  /* lives inside the caller's arena */

/* Readable name of a status, e.g. "MTAN_ERROR_CHECKSUM". Never NULL. */
const char* mtan_status_string(mtan_status status);

/* Message of the last failing call in this process, naming what was wrong
 * (which tensor, field and value). Valid until the next failing call. */
const char* mtan_last_error(void);

/* Initializes XNNPACK once per process. Its one-time CPU detection is the
 * only heap use of the runtime; call it at start-up. Safe to call again. */
mtan_status mtan_init(void);

mtan_options mtan_options_default(void);

/* Verifies the model and writes the exact arena size mtan_load needs with
 * these options to *arena_bytes_out. Allocates nothing. */
mtan_status mtan_arena_size(const void* model_data, size_t model_bytes,
                            const mtan_options* options, size_t* arena_bytes_out);

/* Verifies the model and prepares it inside `arena` (any alignment). The
 * model keeps pointers into `model_data` (16-byte aligned) and `arena`: both
 * must outlive the model. A too-small arena fails with
 * MTAN_ERROR_ARENA_TOO_SMALL and a message stating the required size. On
 * failure *model_out is NULL and nothing needs releasing. */
mtan_status mtan_load(const void* model_data, size_t model_bytes,
                      const mtan_options* options, void* arena, size_t arena_bytes,
                      mtan_model** model_out);

/* Releases the model's backend operators. Afterwards the arena and model
 * bytes may be reused. NULL is a no-op. */
void mtan_unload(mtan_model* model);

/* Arena bytes the load actually used (equal to mtan_arena_size's answer). */
mtan_status mtan_arena_used(const mtan_model* model, size_t* bytes_out);

mtan_status mtan_max_batch(const mtan_model* model, uint32_t* max_batch_out);
mtan_status mtan_input_count(const mtan_model* model, uint32_t* count_out);
/* Name of input feature `index`; points into the model bytes. */
mtan_status mtan_input_name(const mtan_model* model, uint32_t index, const char** name_out);
mtan_status mtan_task_count(const mtan_model* model, uint32_t* count_out);
mtan_status mtan_task_info_get(const mtan_model* model, uint32_t task, mtan_task_info* info_out);
/* Index of the task named `name`, or MTAN_ERROR_INVALID_ARGUMENT. */
mtan_status mtan_task_find(const mtan_model* model, const char* name, int32_t* task_out);
/* Floats per row mtan_run writes for `task` (or MTAN_ALL_TASKS). */
mtan_status mtan_output_size(const mtan_model* model, int32_t task, uint32_t* floats_out);

/* Runs `task` (or MTAN_ALL_TASKS) on `batch` rows of raw features
 * (row-major, mtan_input_count floats each, not standardised). Writes
 * batch x mtan_output_size floats to `output`; for all tasks each row holds
 * every task's outputs in task order. Runs only the operators the task needs.
 * `threadpool` is a pthreadpool_t or NULL for the calling thread alone.
 * Non-finite features fail with MTAN_ERROR_INPUT_NOT_FINITE; finite values
 * far outside the training range saturate at the int8 limits. */
mtan_status mtan_run(mtan_model* model, const float* rows, uint32_t batch, int32_t task,
                     float* output, size_t output_floats, void* threadpool);

/* An activation tensor as the last mtan_run left it, for debugging and
 * calibration tools. Operators share arena bytes when their lifetimes do not
 * overlap, so only a model written without memory reuse (mtan-convert does
 * this to calibrate) keeps every tensor of a run; `data` points into the
 * arena and holds rows x channels values of `dtype`. */
typedef struct mtan_tensor_desc {
  const char* name;      /* points into the model bytes */
  uint32_t dtype;        /* 0 float32, 1 int8, 2 int32 */
  uint32_t channels;     /* per row */
  uint32_t is_constant;  /* weights or bias: `data` is NULL */
  float scale;           /* int8: real = scale * (q - zero_point) */
  int32_t zero_point;
  const void* data;
} mtan_tensor_desc;

mtan_status mtan_tensor_count(const mtan_model* model, uint32_t* count_out);
mtan_status mtan_tensor_get(const mtan_model* model, uint32_t tensor, mtan_tensor_desc* desc_out);

/* Runs the golden cases stored in the model and compares within their
 * tolerance. Call after an over-the-air update, before swapping models in. */
mtan_status mtan_self_test(mtan_model* model);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* MTAN_MTAN_H_ */
