// Host-side reading and writing of .mtan files, for the trainer, the tools
// and the tests: the graph builder (graph.h), the writer with its planner and
// golden cases (model_file.h), and running a file through the runtime
// (runtime_model.h), plus file_io.h's ReadFile and WriteFileAtomic.
#pragma once

#include "file_io.h"
#include "graph.h"
#include "model_file.h"
#include "runtime_model.h"
