/* kiosk: ranks candidate products for one shopper with an mtan model.
 *
 *   kiosk MODEL.mtan CANDIDATES.csv [--task NAME] [--update NEW.mtan]
 *
 * CANDIDATES.csv has a header row and one row per candidate product for the
 * shopper at the kiosk: a column for every model input (matched by name, in
 * any order; the shopper's own features repeat on each row), and a column
 * "product" naming the product (else the row number is used). Other columns
 * are ignored. Cells are plain numbers: no quoting.
 *
 * The task is NAME, else "purchase", else the model's first binary task. The
 * top 5 by that task's probability are printed as "rank<TAB>product<TAB>score".
 *
 * --update shows a safe model hot-swap as a kiosk would do it after an
 * over-the-air download. The new model is proven while the current one keeps
 * serving (from another thread, in a real kiosk):
 *   1. verified, sized and loaded into the second arena (a file that needs
 *      more arena than this build has, or more than MTAN_MAX_ARENA_BYTES on
 *      any target, is refused here);
 *   2. self-tested: its golden cases reproduce, each output within its own
 *      tolerance (a negated or swapped head fails);
 *   3. its interface checked against what this app feeds it: the task the
 *      kiosk ranks by exists under the same name, binary with one output
 *      (a renamed task would silently rank by another one), and every input
 *      the model reads is a column of the candidates file;
 *   4. a trial run on the real candidates returns MTAN_OK and probabilities.
 * Only then is the old model unloaded and the new one used. Otherwise the
 * kiosk says why and ranks with the old model, which was never touched.
 *
 * All memory is static: the model file, two arenas, the candidate rows. The
 * sizes are compile-time constants (override with -DKIOSK_...). Plain C99. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtan/mtan.h>

#ifndef KIOSK_MODEL_BYTES
#define KIOSK_MODEL_BYTES (4u * 1024u * 1024u) /* largest model file */
#endif
#ifndef KIOSK_ARENA_BYTES
#define KIOSK_ARENA_BYTES (2u * 1024u * 1024u) /* per arena; two for hot-swap */
#endif
#ifndef KIOSK_MAX_CANDIDATES
#define KIOSK_MAX_CANDIDATES 512
#endif
#ifndef KIOSK_MAX_FEATURES
#define KIOSK_MAX_FEATURES 256
#endif
#define KIOSK_MAX_COLUMNS (KIOSK_MAX_FEATURES + 16)
#define KIOSK_LINE_BYTES 16384
#define KIOSK_NAME_BYTES 64
#define KIOSK_TOP 5

#if defined(__GNUC__)
#define KIOSK_ALIGNED(n) __attribute__((aligned(n)))
#else
#error "KIOSK_ALIGNED: give this compiler's way to align a static array"
#endif

/* One loaded model: its file bytes and its arena live side by side, so that a
 * hot-swap can load the next one while this one serves. */
typedef struct kiosk_slot {
  unsigned char* file;
  unsigned char* arena;
  mtan_model* model;
} kiosk_slot;

static unsigned char g_file[2][KIOSK_MODEL_BYTES] KIOSK_ALIGNED(MTAN_MODEL_ALIGNMENT);
static unsigned char g_arena[2][KIOSK_ARENA_BYTES] KIOSK_ALIGNED(64);

static float g_rows[KIOSK_MAX_CANDIDATES * KIOSK_MAX_FEATURES];
static float g_scores[KIOSK_MAX_CANDIDATES];
static char g_product[KIOSK_MAX_CANDIDATES][KIOSK_NAME_BYTES];
static char g_line[KIOSK_LINE_BYTES];

static char g_rank_task[MTAN_MAX_NAME_BYTES + 1]; /* the task the kiosk ranks by */

static int fail(const char* what, mtan_status s) {
  fprintf(stderr, "kiosk: %s: %s: %s\n", what, mtan_status_string(s), mtan_last_error());
  return 1;
}

/* Reads `path` into `buf`; returns its size, or 0 after printing why. */
static size_t read_file(const char* path, unsigned char* buf, size_t capacity) {
  FILE* f = fopen(path, "rb");
  size_t n;
  if (f == NULL) {
    fprintf(stderr, "kiosk: %s: %s\n", path, strerror(errno));
    return 0;
  }
  n = fread(buf, 1, capacity, f);
  if (n == capacity && fgetc(f) != EOF) {
    fprintf(stderr, "kiosk: %s: larger than KIOSK_MODEL_BYTES (%u)\n", path,
            (unsigned)KIOSK_MODEL_BYTES);
    n = 0;
  } else if (ferror(f) || n == 0) {
    fprintf(stderr, "kiosk: %s: cannot read (or empty)\n", path);
    n = 0;
  }
  fclose(f);
  return n;
}

/* Reads, sizes, loads and self-tests a model into `slot`. Returns 0 on
 * success; on failure the slot holds no model and the message is printed. */
static int slot_load(kiosk_slot* slot, const char* path) {
  mtan_options opt = mtan_options_default();
  size_t need = 0;
  mtan_status s;
  const size_t bytes = read_file(path, slot->file, KIOSK_MODEL_BYTES);
  slot->model = NULL;
  if (bytes == 0) return 1;
  s = mtan_arena_size(slot->file, bytes, &opt, &need);
  if (s != MTAN_OK) return fail(path, s);
  if (need > KIOSK_ARENA_BYTES) {
    fprintf(stderr, "kiosk: %s: needs an arena of %lu bytes; this build has %lu "
            "(rebuild with -DKIOSK_ARENA_BYTES=%lu)\n", path, (unsigned long)need,
            (unsigned long)KIOSK_ARENA_BYTES, (unsigned long)need);
    return 1;
  }
  s = mtan_load(slot->file, bytes, &opt, slot->arena, KIOSK_ARENA_BYTES, &slot->model);
  if (s != MTAN_OK) return fail(path, s);
  s = mtan_self_test(slot->model);
  if (s != MTAN_OK) {
    fail(path, s);
    mtan_unload(slot->model);
    slot->model = NULL;
    return 1;
  }
  fprintf(stderr, "kiosk: %s: loaded, %lu arena bytes, self-test passed\n", path,
          (unsigned long)need);
  return 0;
}

/* Reads one line into g_line; 1 if read, 0 at the end, -1 (after printing
 * why) if the line does not fit: a cut line must not become two rows. */
static int read_line(FILE* f, const char* path, int line_no) {
  size_t n;
  if (fgets(g_line, sizeof g_line, f) == NULL) return 0;
  n = strlen(g_line);
  if (n == sizeof g_line - 1 && g_line[n - 1] != '\n' && !feof(f)) {
    fprintf(stderr, "kiosk: %s:%d: line longer than %d bytes\n", path, line_no,
            KIOSK_LINE_BYTES - 1);
    return -1;
  }
  return 1;
}

/* Splits `line` in place at commas; returns the number of fields. */
static int split_csv(char* line, char** fields, int max_fields) {
  int n = 0;
  char* p = line;
  line[strcspn(line, "\r\n")] = '\0';
  for (;;) {
    char* comma = strchr(p, ',');
    if (n == max_fields) return -1;
    fields[n++] = p;
    if (comma == NULL) return n;
    *comma = '\0';
    p = comma + 1;
  }
}

/* Reads the candidates for `model`'s inputs into g_rows / g_product.
 * Returns the number of candidates, or -1 after printing why. */
static int read_candidates(const char* path, const mtan_model* model, uint32_t inputs) {
  char* fields[KIOSK_MAX_COLUMNS];
  int column_of[KIOSK_MAX_FEATURES];
  int product_column = -1, columns = 0, rows = 0, line_no = 1, got;
  uint32_t i;
  FILE* f = fopen(path, "r");
  if (f == NULL) {
    fprintf(stderr, "kiosk: %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (inputs > KIOSK_MAX_FEATURES) {
    fprintf(stderr, "kiosk: the model has %u inputs; this build takes %d\n", inputs,
            KIOSK_MAX_FEATURES);
    fclose(f);
    return -1;
  }
  got = read_line(f, path, line_no);
  if (got <= 0 || (columns = split_csv(g_line, fields, KIOSK_MAX_COLUMNS)) < 0) {
    if (got == 0 || columns < 0)
      fprintf(stderr, "kiosk: %s: no header row, or more than %d columns\n", path,
              KIOSK_MAX_COLUMNS);
    fclose(f);
    return -1;
  }
  for (i = 0; i < inputs; ++i) {
    const char* name = NULL;
    int c;
    mtan_input_name(model, i, &name);
    column_of[i] = -1;
    for (c = 0; c < columns; ++c)
      if (strcmp(fields[c], name) == 0) column_of[i] = c;
    if (column_of[i] < 0) {
      fprintf(stderr, "kiosk: %s: no column for model input '%s'\n", path, name);
      fclose(f);
      return -1;
    }
  }
  for (i = 0; (int)i < columns; ++i)
    if (strcmp(fields[i], "product") == 0) product_column = (int)i;

  while ((got = read_line(f, path, line_no + 1)) != 0) {
    ++line_no;
    if (got < 0) {
      fclose(f);
      return -1;
    }
    if (g_line[0] == '\n' || g_line[0] == '\r' || g_line[0] == '\0') continue;
    if (rows == KIOSK_MAX_CANDIDATES) {
      fprintf(stderr, "kiosk: %s: more than %d candidates\n", path, KIOSK_MAX_CANDIDATES);
      fclose(f);
      return -1;
    }
    if (split_csv(g_line, fields, KIOSK_MAX_COLUMNS) != columns) {
      fprintf(stderr, "kiosk: %s:%d: expected %d cells\n", path, line_no, columns);
      fclose(f);
      return -1;
    }
    for (i = 0; i < inputs; ++i) {
      char* end = NULL;
      const char* cell = fields[column_of[i]];
      const double v = strtod(cell, &end);
      if (end == cell || *end != '\0') {
        fprintf(stderr, "kiosk: %s:%d: '%s' is not a number\n", path, line_no, cell);
        fclose(f);
        return -1;
      }
      g_rows[(size_t)rows * inputs + i] = (float)v;
    }
    if (product_column >= 0) {
      strncpy(g_product[rows], fields[product_column], KIOSK_NAME_BYTES - 1);
      g_product[rows][KIOSK_NAME_BYTES - 1] = '\0';
    } else {
      sprintf(g_product[rows], "row%d", rows + 1);
    }
    ++rows;
  }
  fclose(f);
  return rows;
}

/* The task to rank by: `wanted`, else "purchase", else the first binary one. */
static int pick_task(const mtan_model* model, const char* wanted, int32_t* task) {
  uint32_t count = 0, t;
  if (wanted != NULL) {
    if (mtan_task_find(model, wanted, task) == MTAN_OK) return 0;
    fprintf(stderr, "kiosk: the model has no task '%s'\n", wanted);
    return 1;
  }
  if (mtan_task_find(model, "purchase", task) == MTAN_OK) return 0;
  mtan_task_count(model, &count);
  for (t = 0; t < count; ++t) {
    mtan_task_info info;
    if (mtan_task_info_get(model, t, &info) == MTAN_OK && info.kind == MTAN_TASK_BINARY) {
      *task = (int32_t)t;
      return 0;
    }
  }
  fprintf(stderr, "kiosk: the model has no 'purchase' task and no binary task\n");
  return 1;
}

/* Scores every candidate with `task` into g_scores, max_batch rows a run. */
static int score(mtan_model* model, int32_t task, uint32_t inputs, int candidates) {
  uint32_t max_batch = 0, per_row = 0;
  int done = 0;
  mtan_max_batch(model, &max_batch);
  mtan_output_size(model, task, &per_row);
  if (per_row != 1) {
    fprintf(stderr, "kiosk: the task gives %u values per product; ranking needs 1\n", per_row);
    return 1;
  }
  while (done < candidates) {
    const uint32_t n = (uint32_t)(candidates - done) < max_batch ? (uint32_t)(candidates - done)
                                                                   : max_batch;
    const mtan_status s = mtan_run(model, &g_rows[(size_t)done * inputs], n, task,
                                   &g_scores[done], n, NULL);
    if (s != MTAN_OK) return fail("run", s);
    done += (int)n;
  }
  return 0;
}

/* Proves `next` against what this kiosk feeds it (steps 3 and 4 of
 * --update): the ranking task g_rank_task under the same name and kind, every
 * input a column of the candidates file, and a trial run over the real
 * candidates with probabilities in [0, 1]. Returns 0 when proven. */
static int prove(mtan_model* next, const char* candidates_path) {
  int32_t task = 0;
  uint32_t inputs = 0;
  int candidates, i;
  mtan_task_info info;
  if (mtan_task_find(next, g_rank_task, &task) != MTAN_OK) {
    fprintf(stderr, "kiosk: the new model has no task '%s', which this kiosk ranks by\n",
            g_rank_task);
    return 1;
  }
  if (mtan_task_info_get(next, (uint32_t)task, &info) != MTAN_OK ||
      info.kind != MTAN_TASK_BINARY || info.output_size != 1) {
    fprintf(stderr, "kiosk: the new model's task '%s' is not binary with one output\n",
            g_rank_task);
    return 1;
  }
  mtan_input_count(next, &inputs);
  candidates = read_candidates(candidates_path, next, inputs);
  if (candidates <= 0) {
    fprintf(stderr, "kiosk: the new model cannot read this kiosk's candidates\n");
    return 1;
  }
  if (score(next, task, inputs, candidates) != 0) return 1;
  for (i = 0; i < candidates; ++i) {
    if (!(g_scores[i] >= 0.0f && g_scores[i] <= 1.0f)) {
      fprintf(stderr, "kiosk: the new model scores candidate %d at %g, not a probability\n",
              i + 1, (double)g_scores[i]);
      return 1;
    }
  }
  fprintf(stderr, "kiosk: the new model reads the candidates' columns and ranks them by '%s'\n",
          g_rank_task);
  return 0;
}

int main(int argc, char** argv) {
  kiosk_slot slots[2];
  kiosk_slot* current = &slots[0];
  const char* model_path = NULL;
  const char* candidates_path = NULL;
  const char* task_name = NULL;
  const char* update_path = NULL;
  int32_t task = 0;
  uint32_t inputs = 0;
  int candidates, shown, i, a;
  int order[KIOSK_MAX_CANDIDATES];
  mtan_task_info info;
  mtan_status s;

  for (a = 1; a < argc; ++a) {
    if (strcmp(argv[a], "--task") == 0 && a + 1 < argc) {
      task_name = argv[++a];
    } else if (strcmp(argv[a], "--update") == 0 && a + 1 < argc) {
      update_path = argv[++a];
    } else if (model_path == NULL) {
      model_path = argv[a];
    } else if (candidates_path == NULL) {
      candidates_path = argv[a];
    } else {
      model_path = NULL;
      break;
    }
  }
  if (model_path == NULL || candidates_path == NULL) {
    fprintf(stderr, "usage: %s MODEL.mtan CANDIDATES.csv [--task NAME] [--update NEW.mtan]\n",
            argv[0]);
    return 2;
  }
  for (i = 0; i < 2; ++i) {
    slots[i].file = g_file[i];
    slots[i].arena = g_arena[i];
    slots[i].model = NULL;
  }

  s = mtan_init();
  if (s != MTAN_OK) return fail("init", s);
  if (slot_load(current, model_path) != 0) return 1;
  if (pick_task(current->model, task_name, &task) != 0) return 1;
  mtan_task_info_get(current->model, (uint32_t)task, &info);
  strncpy(g_rank_task, info.name, sizeof g_rank_task - 1);

  if (update_path != NULL) {
    /* Hot-swap: the other slot takes the new model; `current` is untouched
     * (and could go on serving from another thread) until the new one is
     * proven. */
    kiosk_slot* next = current == &slots[0] ? &slots[1] : &slots[0];
    if (slot_load(next, update_path) == 0 && prove(next->model, candidates_path) == 0) {
      mtan_unload(current->model);
      current->model = NULL;
      current = next;
      mtan_task_find(current->model, g_rank_task, &task);
      fprintf(stderr, "kiosk: switched to %s\n", update_path);
    } else {
      mtan_unload(next->model); /* NULL (nothing loaded) is a no-op */
      next->model = NULL;
      fprintf(stderr, "kiosk: update rejected; still serving %s\n", model_path);
    }
  }

  mtan_input_count(current->model, &inputs);
  candidates = read_candidates(candidates_path, current->model, inputs);
  if (candidates < 0) return 1;
  if (candidates == 0) {
    fprintf(stderr, "kiosk: %s: no candidates\n", candidates_path);
    return 1;
  }
  if (score(current->model, task, inputs, candidates) != 0) return 1;
  mtan_task_info_get(current->model, (uint32_t)task, &info);

  /* Top 5 by a partial selection sort: highest score first, the earlier row
   * first on a tie (so that every platform prints the same order). */
  for (i = 0; i < candidates; ++i) order[i] = i;
  shown = candidates < KIOSK_TOP ? candidates : KIOSK_TOP;
  for (i = 0; i < shown; ++i) {
    int best = i, j, t;
    for (j = i + 1; j < candidates; ++j) {
      const float sj = g_scores[order[j]], sb = g_scores[order[best]];
      if (sj > sb || (sj == sb && order[j] < order[best])) best = j;
    }
    t = order[i];
    order[i] = order[best];
    order[best] = t;
  }
  printf("# top %d of %d candidates by %s\n", shown, candidates, info.name);
  for (i = 0; i < shown; ++i)
    printf("%d\t%s\t%.6f\n", i + 1, g_product[order[i]], (double)g_scores[order[i]]);

  mtan_unload(current->model);
  return 0;
}
