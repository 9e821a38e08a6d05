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
 * Threads. Calls on different models may run concurrently from any threads.
 * mtan_arena_size, mtan_load and mtan_unload take a process-wide mutex (a
 * platform hook: runtime/src/platform.h, pthreads by default), so loads are
 * serialised and a waiting thread sleeps. One model serves one thread at a
 * time: its activations live in its arena. mtan_run and mtan_self_test on a
 * model that another thread is running or self-testing return
 * MTAN_ERROR_BUSY at once, having touched nothing; wait or use one model per
 * thread. The queries (mtan_task_find, mtan_input_name, ...) only read and may
 * run alongside. mtan_unload must not race with any other call on the same
 * model. mtan_last_error is per thread.
 *
 * Stack. The verifier's and XNNPACK sizing's working memory is static (about
 * 65 KB of .bss, used only under the load mutex), so no call needs a large
 * stack: measured peaks on x86-64, XNNPACK's included, are about 2.8 KB for
 * mtan_arena_size + mtan_load and 3.8 KB for mtan_run + mtan_self_test
 * (tests/runtime/stack_test.cc paints a thread's stack to measure them, and
 * fails above 16 KB). Give a thread that calls mtan 16 KB plus its own needs.
 */
#ifndef MTAN_MTAN_H_
#define MTAN_MTAN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTAN_VERSION_MAJOR 1
#define MTAN_VERSION_MINOR 2  /* 1.1: per-output golden tolerances, MTAN_ERROR_BUSY,
                                 MTAN_ERROR_NAME, MTAN_MAX_ARENA_BYTES.
                                 1.2: the footer's checksum is XXH64; 1.0 and
                                 1.1 files get MTAN_ERROR_VERSION. Later
                                 additions that older runtimes refuse by
                                 themselves (CONCAT, RESHAPE, EMBEDDING_BAG,
                                 tensor inputs, MTAN_ERROR_INPUT_ID) kept 1.2 */

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
#define MTAN_MAX_INPUTS 4096
#define MTAN_MAX_TENSOR_INPUTS 64
#define MTAN_MAX_DIM 1048576
#define MTAN_MAX_RANK 4
#define MTAN_MAX_BATCH 65536
#define MTAN_MAX_GOLDEN_CASES 64
/* Input, task and class names: 1..MTAN_MAX_NAME_BYTES bytes, no NUL or other
 * control character, unique among inputs, among tasks and within a task's
 * classes (otherwise MTAN_ERROR_NAME). */
#define MTAN_MAX_NAME_BYTES 128
/* The largest arena any model may need, on every target: sizes are computed
 * in 64 bits and a model asking for more fails with MTAN_ERROR_LIMIT, so the
 * answer fits a 32-bit size_t and a file that loads on x86-64 also sizes
 * correctly on armv7. */
#define MTAN_MAX_ARENA_BYTES (2u * 1024u * 1024u * 1024u)
/* Float models clamp every standardised feature, (x - mean) / std, to
 * +-MTAN_STANDARDIZED_LIMIT before the network sees it (int8 models saturate
 * at their calibrated range), and the verifier refuses a float model whose
 * weights could then overflow float32 anywhere: finite features always give
 * finite outputs, the same on every backend. */
#define MTAN_STANDARDIZED_LIMIT 1024

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
  MTAN_ERROR_BUFFER = 12,           /* buffer missing, not the size of its tensor, a
                                       NaN / infinite float weight, or float weights
                                       large enough to overflow float32 */
  MTAN_ERROR_QUANTIZATION = 13,     /* scale not finite and positive, zero point out of
                                       range, an int8 layer whose |bias| + 256 * sum |w|
                                       exceeds INT32_MAX (its accumulator could wrap), or
                                       a scale that could overflow float32 */
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
  MTAN_ERROR_NO_GOLDEN_CASES = 24,  /* self-test asked of a model that has none */
  MTAN_ERROR_BUSY = 25,             /* another thread is running this model */
  MTAN_ERROR_NAME = 26,             /* an input, task or class name is empty, too long,
                                       holds a control character, or is a duplicate */
  MTAN_ERROR_INPUT_ID = 27          /* an id in a tensor input outside its table (not
                                       0..rows-1, nor the padding -1) */
} mtan_status;

typedef enum mtan_backend {
  MTAN_BACKEND_DEFAULT = 0,   /* the fastest: XNNPACK where built with it,
                                 and on x86 cores with AVX512-VNNI or AVX-VNNI
                                 the runtime's own int8 fully-connected
                                 kernels (bit-identical to the reference);
                                 else reference */
  MTAN_BACKEND_XNNPACK = 1,   /* XNNPACK's kernels wherever it has them */
  MTAN_BACKEND_REFERENCE = 2  /* portable scalar kernels */
} mtan_backend;

typedef enum mtan_task_kind {
  MTAN_TASK_BINARY = 0,      /* output: 1 probability */
  MTAN_TASK_MULTICLASS = 1,  /* output: one probability per class */
  MTAN_TASK_REGRESSION = 2   /* output: 1 value, in the label's units */
} mtan_task_kind;

typedef enum mtan_dtype {  /* the element type of a tensor (the file's DType) */
  MTAN_DTYPE_FLOAT32 = 0,
  MTAN_DTYPE_INT8 = 1,
  MTAN_DTYPE_INT32 = 2,
  MTAN_DTYPE_INT64 = 3   /* ids, in tensor inputs only */
} mtan_dtype;

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

/* Message of the last failing call made by this thread, naming what was
 * wrong (which tensor, field and value). Valid until this thread's next
 * failing call; other threads' failures do not touch it. */
const char* mtan_last_error(void);

/* Initializes XNNPACK once per process. Its one-time CPU detection is the
 * only heap use of the runtime; call it at start-up. Safe to call again. */
mtan_status mtan_init(void);

mtan_options mtan_options_default(void);

/* Verifies the model and writes the exact arena size mtan_load needs with
 * these options to *arena_bytes_out (at most MTAN_MAX_ARENA_BYTES: a model
 * that needs more fails with MTAN_ERROR_LIMIT). Allocates nothing. Verifying
 * costs about one pass over the file, however its tensors are shared. */
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
 * bytes may be reused. NULL is a no-op. No other call on this model may be
 * running. */
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

/* Tensor inputs: inputs beside the dense feature rows that the caller passes
 * as they are: int64 ids [L] for an embedding bag (-1 pads a shorter list).
 * The model maps them to its table's rows (a vocabulary of keys, hashing
 * into buckets, or row numbers as given: schema IdMap). A model with any is
 * run with mtan_run_inputs. */
typedef struct mtan_input_info {
  const char* name;               /* points into the model bytes */
  uint32_t dtype;                 /* MTAN_DTYPE_FLOAT32 or MTAN_DTYPE_INT64 */
  uint32_t rank;                  /* of the per-row shape, 1..3 */
  uint32_t shape[MTAN_MAX_RANK];  /* its dimensions; 0 beyond rank */
  uint32_t row_bytes;             /* bytes of one row the caller passes */
  uint32_t id_map;                /* 0 row numbers, 1 vocabulary, 2 hashed (IdMap) */
  uint32_t id_rows;               /* rows the ids map to (vocabulary: keys + 1, the
                                     last for unknown keys; hashed: buckets; 0 for
                                     row numbers) */
} mtan_input_info;

/* A string id as the model's hashed inputs and the trainer take it: XXH64
 * (seed 0) of its `length` bytes as int64, never -1 (padding; that value
 * becomes -2). `xxhsum -H64` of the same bytes prints it in hex. */
int64_t mtan_hash_id(const void* bytes, size_t length);

mtan_status mtan_tensor_input_count(const mtan_model* model, uint32_t* count_out);
mtan_status mtan_tensor_input_info(const mtan_model* model, uint32_t index, mtan_input_info* info_out);

/* Runs `task` (or MTAN_ALL_TASKS) on `batch` rows of raw features
 * (row-major, mtan_input_count floats each, not standardised). Writes
 * batch x mtan_output_size floats to `output`; for all tasks each row holds
 * every task's outputs in task order. Runs only the operators the task needs.
 * `threadpool` is a pthreadpool_t or NULL for the calling thread alone.
 * Non-finite features fail with MTAN_ERROR_INPUT_NOT_FINITE; finite values
 * far outside the training range saturate (int8 models at their calibrated
 * range, float models at MTAN_STANDARDIZED_LIMIT), so every output is
 * finite; a regression output with an expm1 transform saturates at FLT_MAX.
 * MTAN_ERROR_BUSY if another thread is running this model. */
mtan_status mtan_run(mtan_model* model, const float* rows, uint32_t batch, int32_t task,
                     float* output, size_t output_floats, void* threadpool);

/* mtan_run for a model with tensor inputs: tensor_inputs[j] holds `batch`
 * rows of tensor input j (row_bytes each, row-major, any alignment), and
 * tensor_input_count must be mtan_tensor_input_count's answer. A model
 * without tensor inputs takes 0 and NULL. mtan_run fails on a model with
 * tensor inputs (MTAN_ERROR_INVALID_ARGUMENT). An id outside its table fails
 * with MTAN_ERROR_INPUT_ID, naming the row and the tensor. */
mtan_status mtan_run_inputs(mtan_model* model, const float* rows, const void* const* tensor_inputs,
                            uint32_t tensor_input_count, uint32_t batch, int32_t task,
                            float* output, size_t output_floats, void* threadpool);

/* One id input of a batch in CSR form, as torch.nn.EmbeddingBag takes it:
 * row r's ids are ids[offsets[r]] .. ids[offsets[r + 1] - 1]. `offsets` has
 * batch + 1 entries: offsets[0] == 0, never decreasing. An empty row is an
 * empty bag (zeros). Ids are the model's keys (the trainer's integers, or
 * mtan_hash_id of a string), mapped as the model's id map says: an unknown
 * key goes to the out-of-vocabulary row; -1 is skipped, as padding. */
typedef struct mtan_ids {
  const int64_t* ids;
  const uint32_t* offsets;
} mtan_ids;

/* One batch for mtan_run_batch: `batch` rows of raw dense features
 * (mtan_input_count floats each) and, for each tensor input in order
 * (mtan_tensor_input_count of them, all int64 ids), its ids. */
typedef struct mtan_batch {
  const float* rows;
  uint32_t batch;
  const mtan_ids* ids;
  uint32_t id_input_count;
} mtan_batch;

/* mtan_run on one batch with ids in CSR form: the call for apps, whose bags
 * have any length. A row with more ids than its input takes (the `shape`
 * mtan_tensor_input_info gives: the longest bag the model was trained with)
 * fails with MTAN_ERROR_INPUT_ID naming the row and the input; malformed
 * offsets (offsets[0] != 0, decreasing) or a NULL pointer fail with
 * MTAN_ERROR_INVALID_ARGUMENT. Nothing is read past offsets[batch] ids. The
 * ids are copied into the arena (no heap), so the caller's arrays may change
 * once the call returns. */
mtan_status mtan_run_batch(mtan_model* model, const mtan_batch* batch, int32_t task, float* output,
                           size_t output_floats, void* threadpool);

/* An activation tensor as the last mtan_run left it, for debugging and
 * calibration tools. Operators share arena bytes when their lifetimes do not
 * overlap, so only a model written without memory reuse (mtan-convert does
 * this to calibrate) keeps every tensor of a run; `data` points into the
 * arena and holds rows x channels values of `dtype`. */
typedef struct mtan_tensor_desc {
  const char* name;      /* points into the model bytes */
  uint32_t dtype;        /* an mtan_dtype */
  uint32_t channels;     /* values per row (the product of the per-row shape); constants: of the whole tensor */
  uint32_t is_constant;  /* weights or bias: `data` is NULL */
  float scale;           /* int8: real = scale * (q - zero_point) */
  int32_t zero_point;
  const void* data;
  uint32_t rank;         /* of the per-row shape (activations) or the full shape */
  uint32_t shape[MTAN_MAX_RANK];  /* its dimensions; 0 beyond rank */
} mtan_tensor_desc;

mtan_status mtan_tensor_count(const mtan_model* model, uint32_t* count_out);
mtan_status mtan_tensor_get(const mtan_model* model, uint32_t tensor, mtan_tensor_desc* desc_out);

/* Runs the golden cases stored in the model and compares every output with
 * its own tolerance (format 1.1; a 1.0 file has one tolerance per case).
 * Call after an over-the-air update, before swapping models in; see
 * platforms/examples/kiosk for a whole safe swap (interface check, self-test,
 * trial run, and only then the old model's unload). MTAN_ERROR_BUSY if
 * another thread is running this model. */
mtan_status mtan_self_test(mtan_model* model);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* MTAN_MTAN_H_ */
